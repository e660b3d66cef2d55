"""Which hub a SIWE login is for: one normal form of a hub URL, shared by CLI and hub.

A login message names a domain and a URI, and a signature over it is only as safe as the
check that they name the hub being talked to: the CLI derives both from the URL it connects
to (never from what that server announces), and the hub refuses messages that do not name
its own public URL. Both ends use this module, so they normalise alike (docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Origin:
    """A hub URL in the one form both ends of a SIWE login compare (docs/security.md).

    ``domain`` is the RFC 3986 authority (lower-case host, the port unless it is the scheme's
    default) that EIP-4361 messages name; ``uri`` is scheme, authority and path without a
    trailing slash. A user name and password in the URL (a proxy's basic auth) are left
    out of both: they are not part of which hub it is, and must never be signed or shown.
    """

    scheme: str
    domain: str
    uri: str


def origin(url: str) -> Origin:
    """Normalise an http(s) URL; ValueError when it is not one a hub can be reached at.

    The message of that ValueError never repeats the URL: it may hold a password.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError("a hub URL starts with http:// or https:// and names a host")
    if parts.query or parts.fragment:
        raise ValueError("a hub URL has no query (?) or fragment (#)")
    host = parts.hostname  # lower-cased, IPv6 brackets removed
    if ":" in host:
        host = f"[{host}]"
    port = parts.port  # ValueError for a port that is not a number in range
    domain = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return Origin(scheme, domain, f"{scheme}://{domain}{parts.path.rstrip('/')}")
