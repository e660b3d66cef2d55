"""Scrubs secrets out of text before it goes into a support bundle, and remembers where.

Two layers, because either alone leaks: patterns catch secrets by their shape or by the
key they sit under (a PEM private key block, ``client-key-data:``, ``PrivateKey =``,
``Authorization: Bearer``, ``"token": "..."``, a bare 64-hex wallet key, a token with a
vendor's prefix such as Slack's ``xoxb-``, a BIP-39 seed phrase), and known values (the
session token, the wallet key, the WireGuard key read from wg0.conf) are scrubbed wherever
they appear, whatever surrounds them.  The manifest records the kind, the bundle member and
the count of every redaction, never the value.

JSON is redacted as JSON (:meth:`Redactor.redact_json`): each string on its own, and the
value under a key that names a secret replaced whole. Redacting its text instead cut
``"files/.../api-token": 41`` into ``"...": [REDACTED:secret-field]``, which no parser reads.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

MARK = "[REDACTED:{kind}]"

# A key *ending* in one of these names: token, api_token, bootstrapToken, client_secret,
# AWS_SECRET_ACCESS_KEY, X-Api-Key... ('-' too: HTTP headers and YAML keys use it).
_SECRET_KEYS = (
    r"[\w.-]*(?:token|secret|password|passwd|private[_-]?key|api[_-]?key"
    r"|(?:access|secret)[_-]?key|wallet_key)"
    r"|auth|identitytoken"
)


# A key naming a secret, as a whole JSON key (``token``, ``api_token``, ``X-Api-Key``).
_SECRET_KEY = re.compile(rf"(?i)(?:{_SECRET_KEYS})")
# BIP-39 phrases are 12 to 24 words; a run of 12 or more list words is one (or holds one).
SEED_WORDS = 12
_WORD = re.compile(r"[A-Za-z]+")
# Between the words of a phrase: blanks, commas, and the numbers of a numbered list ("1. ").
_BETWEEN_WORDS = re.compile(r"[\s,;:.()\d-]+")


@cache
def bip39_words() -> frozenset[str]:
    """The BIP-39 English word list (eth-account ships it for its own mnemonics)."""
    from eth_account.hdaccount.mnemonic import Mnemonic
    from eth_account.types import Language

    return frozenset(Mnemonic(Language.ENGLISH).wordlist)


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    value_groups: tuple[int, ...]  # the first of these that matched is replaced; 0: all


_RULES: tuple[_Rule, ...] = (
    # A whole PEM private key (any algorithm; OpenPGP's armour adds " BLOCK"), or a cut-off
    # one up to the end of the text.
    _Rule(
        "pem-private-key",
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?"
            r"(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
            re.DOTALL,
        ),
        (0,),
    ),
    # kubeconfig user credentials: the client key and cert data, tokens, passwords.
    _Rule(
        "kubeconfig-credential",
        re.compile(
            r"(?im)^(\s*-?\s*(?:client-key-data|client-certificate-data|token|id-token"
            r"|refresh-token|password)\s*:[ \t]*)(\S[^\n]*)$"
        ),
        (2,),
    ),
    _Rule(
        "wireguard-private-key",
        re.compile(r"(?im)^(\s*(?:PrivateKey|PresharedKey)\s*=[ \t]*)(\S+)"),
        (2,),
    ),
    # `Authorization: Bearer x`, `"Authorization": "Basic x"`, Go's `Authorization:[Bearer x]`.
    _Rule(
        "authorization-header",
        re.compile(
            r"(?i)(\bauthorization\b[\"']?\s*[:=]\s*[\[\"']?\s*"
            r"(?:(?:bearer|basic|token|digest)\s+)?)([^\s\"',;\]]+)"
        ),
        (2,),
    ),
    _Rule("bearer-token", re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/=-]{8,})"), (2,)),
    _Rule(
        "secret-field",
        re.compile(
            rf"(?i)([\"']?(?<![\w.-])(?:{_SECRET_KEYS})[\"']?\s*[:=]\s*)"
            r"(?:\"([^\"\n]*)\"|'([^'\n]*)'|([^\s\"',}\]]+))"
        ),
        (2, 3, 4),
    ),
    # Secrets recognised by their shape alone, wherever they stand (no key names them):
    # a JWT (header and payload are base64 JSON, so both start "eyJ"), a kubeadm bootstrap
    # token as `kubeadm join --token` prints it, an AWS access key id, a URL's password.
    _Rule("jwt", re.compile(r"\beyJ[\w-]{4,}\.eyJ[\w-]{4,}\.[\w-]*"), (0,)),
    _Rule("kubeadm-token", re.compile(r"(?<![\w.-])[a-z0-9]{6}\.[a-z0-9]{16}(?![\w.-])"), (0,)),
    _Rule("aws-access-key-id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), (0,)),
    # Tokens whose vendor prefix says what they are: Slack (xoxb-, xoxp-, xapp-), GitHub
    # (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_), GitLab (glpat-), OpenAI (sk-), Stripe
    # (sk_live_, rk_live_), Google API keys (AIza), Hugging Face (hf_), npm (npm_), PyPI.
    _Rule(
        "token-prefix",
        re.compile(
            r"(?<![\w-])(?:xox[abposr]-[A-Za-z0-9-]{10,}|xapp-[A-Za-z0-9-]{10,}"
            r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_\w{30,}|glpat-[\w-]{20,}"
            r"|sk-(?:proj-)?[\w-]{20,}|[sr]k_live_[A-Za-z0-9]{16,}|AIza[\w-]{35}"
            r"|hf_[A-Za-z0-9]{30,}|npm_[A-Za-z0-9]{36}|pypi-[\w-]{50,})"
        ),
        (0,),
    ),
    _Rule(
        "url-password",
        re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@\"']*:)([^/\s@\"']+)(?=@)"),
        (2,),
    ),
    # A bare 32-byte key in hex (an Ethereum wallet key). Image digests (sha256:...) go too:
    # a prefix is no proof of what follows it, and a wallet key pasted after "sha256:" would
    # otherwise leave in clear; support loses only the digests, which name public images.
    _Rule(
        "hex-key",
        re.compile(r"(?<![0-9A-Fa-f])(?:0x)?[0-9a-fA-F]{64}(?![0-9A-Fa-f])"),
        (0,),
    ),
)


@dataclass
class Redactor:
    """Applies every rule to each bundle member and keeps per-member counts for the manifest."""

    known: dict[str, set[str]] = field(default_factory=dict)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add_known(self, kind: str, values: Iterable[str]) -> None:
        """Secret values to scrub wherever they appear; short ones would erase ordinary text."""
        for v in values:
            v = v.strip()
            if len(v) >= 8:
                self.known.setdefault(kind, set()).add(v)

    def redact(self, member: str, text: str) -> str:
        for rule in _RULES:
            text = self._apply(rule, member, text)
        text = self._seed_phrases(member, text)
        for kind, values in self.known.items():
            for value in sorted(values, key=len, reverse=True):
                n = text.count(value)
                if n:
                    text = text.replace(value, MARK.format(kind=kind))
                    self.counts[(member, kind)] += n
        return text

    def _apply(self, rule: _Rule, member: str, text: str) -> str:
        mark = MARK.format(kind=rule.kind)

        def replace(m: re.Match[str]) -> str:
            group = next(g for g in rule.value_groups if m.group(g) is not None)
            if not m.group(group) or m.group(group).startswith("[REDACTED"):
                return m.group(0)
            self.counts[(member, rule.kind)] += 1
            if group == 0:
                return mark
            start, end = m.span(group)
            base = m.start(0)
            whole = m.group(0)
            return whole[: start - base] + mark + whole[end - base :]

        return rule.pattern.sub(replace, text)

    def redact_json(self, member: str, doc: Any) -> Any:
        """``doc`` with every string redacted on its own and the value under a key that
        names a secret (``"token": ...``) replaced whole; keys are redacted like strings
        (a URL with a password can be one). The result is JSON as valid as ``doc``."""
        if isinstance(doc, str):
            return self.redact(member, doc)
        if isinstance(doc, dict):
            out: dict[Any, Any] = {}
            for key, value in doc.items():
                name = self.redact(member, key) if isinstance(key, str) else key
                secret = isinstance(key, str) and _SECRET_KEY.fullmatch(key) is not None
                scalar = isinstance(value, str | int | float) and not isinstance(value, bool)
                if secret and scalar and value != "" and not str(value).startswith("[REDACTED"):
                    self.counts[(member, "secret-field")] += 1
                    out[name] = MARK.format(kind="secret-field")
                else:
                    out[name] = self.redact_json(member, value)
            return out
        if isinstance(doc, list | tuple):
            return [self.redact_json(member, value) for value in doc]
        return doc

    def _seed_phrases(self, member: str, text: str) -> str:
        """Runs of ``SEED_WORDS`` or more BIP-39 words (a wallet's recovery phrase) go whole.

        Ordinary English rarely runs that long inside the list: "the", "a", "is", "of" and
        "to" are not in it.
        """
        if len(text) < SEED_WORDS * 3:
            return text
        words = bip39_words()
        runs: list[tuple[int, int]] = []
        start = end = count = 0
        for match in _WORD.finditer(text):
            joined = count and _BETWEEN_WORDS.fullmatch(text, end, match.start()) is not None
            if match.group(0).lower() not in words:
                if count >= SEED_WORDS:
                    runs.append((start, end))
                count = 0
                continue
            if not joined:
                if count >= SEED_WORDS:
                    runs.append((start, end))
                start, count = match.start(), 0
            count, end = count + 1, match.end()
        if count >= SEED_WORDS:
            runs.append((start, end))
        mark = MARK.format(kind="seed-phrase")
        for first, last in reversed(runs):
            text = text[:first] + mark + text[last:]
            self.counts[(member, "seed-phrase")] += 1
        return text

    def manifest(self) -> list[dict[str, object]]:
        """What was redacted where: kind, member, count, and never the value itself."""
        return [
            {"member": member, "kind": kind, "count": n}
            for (member, kind), n in sorted(self.counts.items())
        ]
