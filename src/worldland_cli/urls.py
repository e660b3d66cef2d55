"""URLs as they may be shown: a password in a hub URL (a proxy's basic auth) is masked.

Its own module so that both the settings (``config show``) and the hub client (every error
naming the hub) can mask without one importing the other.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def mask_url(url: str) -> str:
    """A URL with any password replaced, so output can be pasted into a ticket."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:****@{parts.hostname}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))
