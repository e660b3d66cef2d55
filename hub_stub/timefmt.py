"""How the hub writes times: RFC 3339 UTC to the second, the one format of docs/hub-api.md."""

from __future__ import annotations

import datetime as dt


def rfc3339(epoch: float) -> str:
    """Seconds since the epoch as ``2026-11-23T04:48:39Z``."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
