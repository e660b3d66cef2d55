"""SIWE (EIP-4361) login and bearer tokens.

The ``siwe`` package parses the message and checks the signature; the hub checks the things
only it knows first (its own domain, the chain ids it accepts, the nonces it issued and which
are spent, the clock) so every rejection names its reason, e.g. the seed's troubleshooting text
``domain mismatch: expected X, got Y``. A nonce is spent only by a login that verifies, in the
same conditional UPDATE that checks it is unspent, so two racing logins cannot both win.
Tokens are 256 random bits; only their SHA-256 is stored, so a copied database leaks no token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time

from eth_keys.exceptions import BadSignature
from siwe import (
    ExpiredMessage,
    InvalidSignature,
    NotYetValidMessage,
    SiweMessage,
    VerificationError,
)

from hub_stub.config import HubConfig
from hub_stub.store import Store


class LoginRejected(Exception):
    """A login that must fail with a 401; the message is the reason shown to the person."""


def token_hash(token: str) -> str:
    """What the tokens table stores instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_nonce(store: Store, config: HubConfig) -> tuple[str, float]:
    """Issue a one-time nonce (alphanumeric, as EIP-4361 requires) and its expiry."""
    nonce = secrets.token_hex(12)
    now = time.time()
    expires = now + config.nonce_ttl.total_seconds()
    with store.transaction() as db:
        # Expired nonces are useless; dropping them here keeps the table small.
        db.execute("DELETE FROM nonces WHERE expires_at < ?", (now - 3600,))
        db.execute("INSERT INTO nonces (nonce, expires_at) VALUES (?, ?)", (nonce, expires))
    return nonce, expires


def login(store: Store, config: HubConfig, message: str, signature: str) -> tuple[str, str, float]:
    """Verify a signed SIWE message; return (token, checksummed address, token expiry)."""
    try:
        parsed = SiweMessage.from_message(message)
    except Exception as exc:  # the parser raises ValueError, pydantic and grammar errors alike
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else "the text does not follow the EIP-4361 grammar"
        raise LoginRejected(f"malformed SIWE message: {reason}") from None
    if parsed.domain != config.siwe_domain:
        raise LoginRejected(f"domain mismatch: expected {config.siwe_domain}, got {parsed.domain}")
    if parsed.chain_id not in config.chain_ids:
        allowed = ", ".join(str(c) for c in config.chain_ids)
        raise LoginRejected(f"chain id {parsed.chain_id} not allowed (allowed: {allowed})")
    now = dt.datetime.now(dt.UTC)
    with store.read() as db:
        row = db.execute(
            "SELECT expires_at, used_at FROM nonces WHERE nonce = ?", (parsed.nonce,)
        ).fetchone()
    if row is None:
        raise LoginRejected("unknown nonce (get a fresh one from POST /v1/auth/nonce)")
    if row["used_at"] is not None:
        raise LoginRejected("nonce already used")
    if row["expires_at"] < now.timestamp():
        raise LoginRejected("nonce expired (get a fresh one from POST /v1/auth/nonce)")
    if parsed.issued_at._datetime > now + config.clock_skew:
        raise LoginRejected("issued-at is in the future (check the signer's clock)")
    try:
        parsed.verify(signature, domain=config.siwe_domain, nonce=parsed.nonce, timestamp=now)
    except ExpiredMessage:
        raise LoginRejected("message expired") from None
    except NotYetValidMessage:
        raise LoginRejected("message not yet valid (not-before is in the future)") from None
    except (InvalidSignature, BadSignature):
        # siwe turns most recovery failures into InvalidSignature, but eth_keys' BadSignature
        # (r or s zero or above the curve order) escapes it; it is the same wrong signature.
        raise LoginRejected("signature does not match address") from None
    except VerificationError as exc:
        raise LoginRejected(f"verification failed: {type(exc).__name__}") from None
    token = secrets.token_urlsafe(32)
    expires = now.timestamp() + config.token_ttl.total_seconds()
    with store.transaction() as db:
        spent = db.execute(
            "UPDATE nonces SET used_at = ? WHERE nonce = ? AND used_at IS NULL",
            (now.timestamp(), parsed.nonce),
        )
        if spent.rowcount != 1:
            raise LoginRejected("nonce already used")
        db.execute("DELETE FROM tokens WHERE expires_at < ?", (now.timestamp(),))
        db.execute(
            "INSERT INTO tokens (token_hash, address, expires_at) VALUES (?, ?, ?)",
            (token_hash(token), parsed.address, expires),
        )
    return token, str(parsed.address), expires


class TokenCache:
    """Live tokens already looked up: token hash -> (address, expiry).

    Every authenticated request resolves its token, and heartbeats are the bulk of the
    traffic; a token never changes once issued (only expires), so caching the lookup is
    safe. The cache is bounded and simply cleared when full.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._entries: dict[str, tuple[str, float]] = {}
        self._limit = limit

    def get(self, digest: str, now: float) -> str | None:
        entry = self._entries.get(digest)
        if entry is None or entry[1] <= now:
            return None
        return entry[0]

    def put(self, digest: str, address: str, expires: float) -> None:
        if len(self._entries) >= self._limit:
            self._entries.clear()
        self._entries[digest] = (address, expires)


def address_for_token(store: Store, token: str, cache: TokenCache) -> str | None:
    """The wallet a live token belongs to, or None when unknown or expired."""
    digest = token_hash(token)
    now = time.time()
    cached = cache.get(digest, now)
    if cached is not None:
        return cached
    with store.read() as db:
        row = db.execute(
            "SELECT address, expires_at FROM tokens WHERE token_hash = ? AND expires_at > ?",
            (digest, now),
        ).fetchone()
    if row is None:
        return None
    cache.put(digest, str(row["address"]), float(row["expires_at"]))
    return str(row["address"])
