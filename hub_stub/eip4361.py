"""The EIP-4361 (Sign-In with Ethereum) message grammar, parsed in linear time.

Why not the ``siwe`` package's parser: it runs the ABNF grammar through a generic
backtracking parser whose cost grows with the square of a field's length (a 1 KiB domain of
``xn--`` cost seconds of CPU, unauthenticated), and its ``verify`` checks the signature
against its own re-rendering of the message, so valid messages it renders differently (an
empty ``Resources:`` list, say) failed as "signature does not match address".

Here every line of the grammar is one anchored regular expression whose repetitions are over
disjoint character classes, so matching never backtracks more than linearly, and the whole
text is bounded by :data:`MAX_MESSAGE` before any of it is looked at. The signature is then
checked over the exact text received (:func:`recover_signer`), never a re-rendering.
``tests/security/test_login_grammar.py`` checks this parser against the reference ABNF
parser on generated messages, so the two accept the same language.

Grammar (EIP-4361, with RFC 3986 URIs and RFC 3339 times)::

    [ scheme "://" ] domain " wants you to sign in with your Ethereum account:" LF
    address LF LF [ statement LF ] LF
    "URI: " URI LF "Version: 1" LF "Chain ID: " 1*DIGIT LF "Nonce: " 8*(ALPHA / DIGIT) LF
    "Issued At: " date-time [ LF "Expiration Time: " date-time ] [ LF "Not Before: " date-time ]
    [ LF "Request ID: " *pchar ] [ LF "Resources:" *( LF "- " URI ) ]
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass

# One login message; a real one is about 400 bytes. Checked before anything is parsed.
MAX_MESSAGE = 4096
# Chain ids are 256-bit at most (EIP-155 uses far less); a longer run of digits is not one.
MAX_CHAIN_ID_DIGITS = 78

# RFC 3986 building blocks. Each repetition below is over alternatives that start with
# different characters, so a regex engine can never try one input two ways.
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"
_USERINFO = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*"
_REG_NAME = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*"
_IP_FUTURE = rf"v[0-9A-Fa-f]+\.[{_UNRESERVED}{_SUB_DELIMS}:]+"
# An IP literal's inside is checked by ipaddress (IPv6) or _IP_FUTURE, not by a regex.
_IP_LITERAL = r"\[(?P<literal>[0-9A-Za-z:.\-_~!$&'()*+,;=]*)\]"
_AUTHORITY = rf"(?:{_USERINFO}@)?(?:{_IP_LITERAL}|{_REG_NAME})(?::[0-9]*)?"
_SEGMENT = rf"{_PCHAR}*"
_SEGMENT_NZ = rf"{_PCHAR}+"
_HIER_PART = (
    rf"(?://{_AUTHORITY}(?:/{_SEGMENT})*"  # "//" authority path-abempty
    rf"|/(?:{_SEGMENT_NZ}(?:/{_SEGMENT})*)?"  # path-absolute
    rf"|{_SEGMENT_NZ}(?:/{_SEGMENT})*"  # path-rootless
    r"|)"  # path-empty
)
_QUERY = rf"(?:{_PCHAR}|[/?])*"
_SCHEME = r"[A-Za-z][A-Za-z0-9+\-.]*"
_URI = re.compile(rf"{_SCHEME}:{_HIER_PART}(?:\?{_QUERY})?(?:#{_QUERY})?")
_DOMAIN = re.compile(_AUTHORITY)
_IP_FUTURE_RE = re.compile(_IP_FUTURE)

_PREAMBLE = re.compile(
    rf"(?:(?P<scheme>{_SCHEME})://)?(?P<domain>[^\s/?#]*)"
    r" wants you to sign in with your Ethereum account:"
)
_ADDRESS = re.compile(r"0[xX][0-9A-Fa-f]{40}")  # ABNF's quoted "0x" ignores case
_STATEMENT = re.compile(rf"[{_UNRESERVED}:/?#\[\]@{_SUB_DELIMS} ]+")
_NONCE = re.compile(r"[A-Za-z0-9]{8,}")
_REQUEST_ID = re.compile(rf"{_PCHAR}*")
_DATE_TIME = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})[Tt]"
    r"(?P<h>[0-9]{2}):(?P<mi>[0-9]{2}):(?P<s>[0-9]{2})(?P<frac>\.[0-9]+)?"
    r"(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<oh>[0-9]{2}):(?P<om>[0-9]{2}))"
)


class MalformedMessage(ValueError):
    """The text is not an EIP-4361 message; the text says where it breaks."""


@dataclass(frozen=True)
class SiweFields:
    """What a sign-in message says, as the signer saw it (times in UTC)."""

    scheme: str | None
    domain: str
    address: str
    statement: str | None
    uri: str
    version: str
    chain_id: int
    nonce: str
    issued_at: dt.datetime
    expiration_time: dt.datetime | None
    not_before: dt.datetime | None
    request_id: str | None
    resources: tuple[str, ...]


def is_uri(text: str) -> bool:
    """Whether ``text`` is an RFC 3986 URI (scheme, hierarchy, optional query/fragment)."""
    match = _URI.fullmatch(text)
    return match is not None and _literal_ok(match.group("literal"))


def _literal_ok(literal: str | None) -> bool:
    """An IP literal's inside: an IPv6 address (no zone, as RFC 3986 says) or IPvFuture."""
    if literal is None:
        return True
    if _IP_FUTURE_RE.fullmatch(literal):
        return True
    if "%" in literal:
        return False
    try:
        ipaddress.IPv6Address(literal)
    except ValueError:
        return False
    return True


def _date_time(text: str, what: str) -> dt.datetime:
    """An RFC 3339 date-time as an aware UTC datetime (leap second 60 read as 59)."""
    m = _DATE_TIME.fullmatch(text)
    if m is None:
        raise MalformedMessage(f"{what} is not an RFC 3339 date-time")
    micro = int((m.group("frac") or ".0")[1:7].ljust(6, "0"))
    try:
        offset = dt.timedelta(0)
        if m.group("z") is None:
            hours, minutes = int(m.group("oh")), int(m.group("om"))
            if hours > 23 or minutes > 59:
                raise ValueError("offset out of range")
            offset = dt.timedelta(hours=hours, minutes=minutes)
            if m.group("sign") == "-":
                offset = -offset
        if int(m.group("s")) > 60:
            raise ValueError("second out of range")
        value = dt.datetime(
            int(m.group("y")),
            int(m.group("mo")),
            int(m.group("d")),
            int(m.group("h")),
            int(m.group("mi")),
            min(int(m.group("s")), 59),
            micro,
            tzinfo=dt.timezone(offset),
        )
        return value.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise MalformedMessage(f"{what} is not a valid date and time") from None


def _take(lines: list[str], at: int, prefix: str, what: str) -> str:
    if at >= len(lines) or not lines[at].startswith(prefix):
        raise MalformedMessage(f"line {at + 1} must start with {prefix!r} ({what})")
    return lines[at][len(prefix) :]


def _optional(lines: list[str], at: int, prefix: str) -> tuple[str | None, int]:
    if at < len(lines) and lines[at].startswith(prefix):
        return lines[at][len(prefix) :], at + 1
    return None, at


def parse(text: str) -> SiweFields:
    """Parse a sign-in message, or raise :class:`MalformedMessage` saying what is wrong.

    Linear in the length of ``text``, which must be at most :data:`MAX_MESSAGE` characters.
    """
    if len(text) > MAX_MESSAGE:
        raise MalformedMessage(f"the message is longer than {MAX_MESSAGE} characters")
    lines = text.split("\n")
    preamble = _PREAMBLE.fullmatch(lines[0])
    if preamble is None:
        raise MalformedMessage(
            "line 1 must be '[SCHEME://]DOMAIN wants you to sign in with your Ethereum account:'"
        )
    domain = preamble.group("domain")
    authority = _DOMAIN.fullmatch(domain)
    if authority is None or not _literal_ok(authority.group("literal")):
        raise MalformedMessage("the domain is not an RFC 3986 authority")
    address = lines[1] if len(lines) > 1 else ""
    if not _ADDRESS.fullmatch(address):
        raise MalformedMessage("line 2 must be the address: 0x and 40 hex digits")
    if len(lines) < 4 or lines[2] != "":
        raise MalformedMessage("line 3 must be empty")
    at, statement = 3, None
    if lines[3] != "":
        if not _STATEMENT.fullmatch(lines[3]):
            raise MalformedMessage("the statement holds a character EIP-4361 does not allow")
        statement, at = lines[3], 4
        if at >= len(lines) or lines[at] != "":
            raise MalformedMessage("an empty line must follow the statement")
    at += 1
    uri = _take(lines, at, "URI: ", "the URI")
    if not is_uri(uri):
        raise MalformedMessage("the URI is not an RFC 3986 URI")
    version = _take(lines, at + 1, "Version: ", "the version")
    if version != "1":
        raise MalformedMessage("the version must be 1")
    chain = _take(lines, at + 2, "Chain ID: ", "the chain id")
    if not chain.isascii() or not chain.isdigit() or len(chain) > MAX_CHAIN_ID_DIGITS:
        raise MalformedMessage("the chain id must be a decimal number")
    nonce = _take(lines, at + 3, "Nonce: ", "the nonce")
    if not _NONCE.fullmatch(nonce):
        raise MalformedMessage("the nonce must be at least 8 letters and digits")
    issued_at = _date_time(_take(lines, at + 4, "Issued At: ", "the issue time"), "Issued At")
    at += 5
    expiration, at = _optional(lines, at, "Expiration Time: ")
    not_before, at = _optional(lines, at, "Not Before: ")
    request_id, at = _optional(lines, at, "Request ID: ")
    if request_id is not None and not _REQUEST_ID.fullmatch(request_id):
        raise MalformedMessage("the request id holds a character EIP-4361 does not allow")
    resources: list[str] = []
    if at < len(lines) and lines[at] == "Resources:":
        at += 1
        while at < len(lines) and lines[at].startswith("- "):
            if not is_uri(lines[at][2:]):
                raise MalformedMessage(f"resource {len(resources) + 1} is not an RFC 3986 URI")
            resources.append(lines[at][2:])
            at += 1
    if at != len(lines):
        raise MalformedMessage(f"line {at + 1} is not part of an EIP-4361 message")
    return SiweFields(
        scheme=preamble.group("scheme"),
        domain=domain,
        address=address,
        statement=statement,
        uri=uri,
        version=version,
        chain_id=int(chain),
        nonce=nonce,
        issued_at=issued_at,
        expiration_time=None if expiration is None else _date_time(expiration, "Expiration Time"),
        not_before=None if not_before is None else _date_time(not_before, "Not Before"),
        request_id=request_id,
        resources=tuple(resources),
    )


def recover_signer(text: str, signature: str) -> str | None:
    """The address that signed exactly ``text`` (EIP-191 personal_sign), or None.

    None covers every way a signature can be unusable (bad length, r or s out of range, a
    point not on the curve): to the person they are all "signature does not match address".
    """
    from eth_account import Account
    from eth_account.messages import encode_defunct

    try:
        return str(Account.recover_message(encode_defunct(text=text), signature=signature))
    except Exception:  # eth_keys raises BadSignature, ValueError, ValidationError alike
        return None
