"""One JSON line per event on stdout: journald keeps it, ``journalctl -o cat | jq`` reads it.

A line is ``{"ts": RFC 3339, "level": "info", "event": "heartbeat.failed", ...fields}``. Event
names are dotted and stable (docs/support-runbook.md lists them), so support can grep for one
without knowing the wording of a message. Debug lines are written only with ``-v``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
from typing import Any, TextIO

from worldland_cli.times import format_time


class EventLog:
    """The daemon's log: thread-safe, one flushed line per call."""

    def __init__(self, verbose: int = 0, stream: TextIO | None = None) -> None:
        self.verbose = verbose
        self._stream = stream
        self._lock = threading.Lock()

    def info(self, event: str, **fields: Any) -> None:
        self._write("info", event, fields)

    def warn(self, event: str, **fields: Any) -> None:
        self._write("warn", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._write("error", event, fields)

    def debug(self, event: str, **fields: Any) -> None:
        if self.verbose:
            self._write("debug", event, fields)

    def _write(self, level: str, event: str, fields: dict[str, Any]) -> None:
        line = {"ts": format_time(dt.datetime.now(dt.UTC)), "level": level, "event": event}
        line.update(fields)
        text = json.dumps(line, default=str, separators=(",", ":"))
        stream = self._stream or sys.stdout
        with self._lock:
            stream.write(text + "\n")
            stream.flush()
