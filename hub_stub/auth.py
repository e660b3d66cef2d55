"""SIWE (EIP-4361) login and bearer tokens.

The hub checks, cheapest first, so that a stranger's junk costs microseconds and every
rejection names its reason (e.g. the seed's ``domain mismatch: expected X, got Y``): the
message's shape (:mod:`hub_stub.eip4361`, linear time, 4 KiB at most), that it names this hub
(domain, scheme and URI all equal the hub's public URL: a message signed for another hub
cannot be relayed here), the chain id, the nonce (issued here, unspent, unexpired), the
clock, and last the signature, recovered over the exact bytes received. A nonce is spent only
by a login that verifies, in the same conditional UPDATE that checks it is unspent, so two
racing logins cannot both win. Tokens are 256 random bits; only their SHA-256 is stored, so a
copied database leaks no token; a revoked token's row is deleted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time

from eth_utils.address import is_checksum_address

from hub_stub import eip4361
from hub_stub.config import HubConfig
from hub_stub.store import Store
from worldland_cli.auth.origin import origin


class LoginRejected(Exception):
    """A login that must fail with a 401; the message is the reason shown to the person."""


class TooManyNonces(Exception):
    """Every nonce slot holds an unspent, unexpired nonce: logins must wait (503)."""


def token_hash(token: str) -> str:
    """What the tokens table stores instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_nonce(store: Store, config: HubConfig) -> tuple[str, float]:
    """Issue a one-time nonce (alphanumeric, as EIP-4361 requires) and its expiry.

    Nonces die with their lifetime (an expired one can never log in), and the table is
    capped, so a flood of requests from many addresses cannot grow it without bound.
    """
    nonce = secrets.token_hex(12)
    now = time.time()
    expires = now + config.nonce_ttl.total_seconds()
    with store.transaction() as db:
        db.execute("DELETE FROM nonces WHERE expires_at < ?", (now,))
        (live,) = db.execute("SELECT count(*) FROM nonces").fetchone()
        if live >= config.max_pending_nonces:
            raise TooManyNonces
        db.execute("INSERT INTO nonces (nonce, expires_at) VALUES (?, ?)", (nonce, expires))
    return nonce, expires


def _check_origin(fields: eip4361.SiweFields, config: HubConfig) -> None:
    """The message must name this hub, exactly as its public URL does."""
    own = config.origin
    if fields.domain.lower() != own.domain:
        raise LoginRejected(f"domain mismatch: expected {own.domain}, got {fields.domain}")
    if fields.scheme is not None and fields.scheme.lower() != own.scheme:
        raise LoginRejected(f"scheme mismatch: expected {own.scheme}, got {fields.scheme}")
    try:
        named = origin(fields.uri).uri
    except ValueError:
        named = fields.uri
    if named != own.uri:
        raise LoginRejected(f"URI mismatch: expected {own.uri}, got {fields.uri}")


def login(store: Store, config: HubConfig, message: str, signature: str) -> tuple[str, str, float]:
    """Verify a signed SIWE message; return (token, checksummed address, token expiry)."""
    try:
        fields = eip4361.parse(message)
    except eip4361.MalformedMessage as exc:
        raise LoginRejected(f"malformed SIWE message: {exc}") from None
    _check_origin(fields, config)
    if fields.chain_id not in config.chain_ids:
        allowed = ", ".join(str(c) for c in config.chain_ids)
        raise LoginRejected(f"chain id {fields.chain_id} not allowed (allowed: {allowed})")
    digits = fields.address[2:]
    if digits not in (digits.lower(), digits.upper()) and not is_checksum_address("0x" + digits):
        # Mixed case carries an EIP-55 checksum; one case carries none (EIP-4361 allows it).
        raise LoginRejected("the address is not EIP-55 checksummed (a mistyped address?)")
    now = dt.datetime.now(dt.UTC)
    with store.read() as db:
        row = db.execute(
            "SELECT expires_at, used_at FROM nonces WHERE nonce = ?", (fields.nonce,)
        ).fetchone()
    if row is None:
        raise LoginRejected("unknown nonce (get a fresh one from POST /v1/auth/nonce)")
    if row["used_at"] is not None:
        raise LoginRejected("nonce already used")
    if row["expires_at"] < now.timestamp():
        raise LoginRejected("nonce expired (get a fresh one from POST /v1/auth/nonce)")
    if fields.issued_at > now + config.clock_skew:
        raise LoginRejected("issued-at is in the future (check the signer's clock)")
    if fields.expiration_time is not None and fields.expiration_time <= now:
        raise LoginRejected("message expired")
    if fields.not_before is not None and fields.not_before > now:
        raise LoginRejected("message not yet valid (not-before is in the future)")
    signer = eip4361.recover_signer(message, signature)
    if signer is None or signer.lower() != fields.address.lower():
        raise LoginRejected("signature does not match address")
    token = secrets.token_urlsafe(32)
    expires = now.timestamp() + config.token_ttl.total_seconds()
    with store.transaction() as db:
        spent = db.execute(
            "UPDATE nonces SET used_at = ? WHERE nonce = ? AND used_at IS NULL",
            (now.timestamp(), fields.nonce),
        )
        if spent.rowcount != 1:
            raise LoginRejected("nonce already used")
        db.execute("DELETE FROM tokens WHERE expires_at < ?", (now.timestamp(),))
        db.execute(
            "INSERT INTO tokens (token_hash, address, expires_at) VALUES (?, ?, ?)",
            (token_hash(token), signer, expires),
        )
    return token, signer, expires


class TokenCache:
    """Live tokens already looked up: token hash -> (address, expiry).

    Every authenticated request resolves its token, and heartbeats are the bulk of the
    traffic; a token never changes once issued (it expires, or is revoked through
    :func:`revoke`, which drops it here too), so caching the lookup is safe. The cache is
    bounded and simply cleared when full.
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

    def drop(self, digest: str) -> None:
        self._entries.pop(digest, None)


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
        # Cached under the store's lock, which revoke() also holds: a revocation can never
        # fall between this read and this put and leave a dead token cached.
        cache.put(digest, str(row["address"]), float(row["expires_at"]))
    return str(row["address"])


def revoke(store: Store, token: str, cache: TokenCache) -> bool:
    """End a session (``worldland logout``): the token stops working at once. True if live."""
    digest = token_hash(token)
    with store.transaction() as db:
        gone = db.execute("DELETE FROM tokens WHERE token_hash = ?", (digest,)).rowcount
        cache.drop(digest)
    return gone == 1
