"""The one written form of a time: RFC 3339 in UTC to the second (``2025-01-31T12:00:00Z``).

The hub's answers, session.json, node.json, certificate status and the lines people read all
use it, so a time copied from one place can be compared with, or pasted into, another.
Only the standard library is imported: commands format times on their way out.
"""

from __future__ import annotations

import datetime as dt

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_time(value: dt.datetime) -> str:
    """``value`` in UTC, whatever zone it was made in (an aware datetime is expected)."""
    return value.astimezone(dt.UTC).strftime(FORMAT)


def parse_time(text: str) -> dt.datetime:
    """An RFC 3339 time as an aware UTC datetime; a time without a zone is taken as UTC."""
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
