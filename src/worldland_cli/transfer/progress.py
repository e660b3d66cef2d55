"""Progress reporting: the engine reports bytes, a sink shows them (or a test reacts to them).

The engine only knows this small protocol, so tests can hook a point in the byte stream (for
instance to cut the connection mid-way) without touching the engine.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol


class ProgressSink(Protocol):
    def add_total(self, nbytes: int) -> None:
        """More bytes are planned (a file was discovered)."""

    def advance(self, nbytes: int) -> None:
        """Bytes moved and acknowledged (written locally, or acknowledged by the server)."""

    def skip(self, nbytes: int) -> None:
        """Bytes that need not move: a verified prefix that a resume keeps."""

    def note(self, message: str) -> None:
        """A line worth showing a person (a retry, a resume)."""


class NullProgress:
    """Reports nothing; used for --json runs without a terminal and in library calls."""

    def add_total(self, nbytes: int) -> None:
        return None

    def advance(self, nbytes: int) -> None:
        return None

    def skip(self, nbytes: int) -> None:
        return None

    def note(self, message: str) -> None:
        return None


class RichProgress:
    """One bar on stderr with bytes, rate and ETA; stdout stays free for --json."""

    def __init__(self, description: str) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        from worldland_cli.output import err_console

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err_console(),
            transient=False,
        )
        self._task = self._progress.add_task(description, total=0)

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def add_total(self, nbytes: int) -> None:
        total = self._progress.tasks[0].total or 0
        self._progress.update(self._task, total=total + nbytes)

    def advance(self, nbytes: int) -> None:
        self._progress.advance(self._task, nbytes)

    def skip(self, nbytes: int) -> None:
        self._progress.advance(self._task, nbytes)

    def note(self, message: str) -> None:
        from rich.markup import escape

        self._progress.console.print(f"[dim]{escape(message)}[/]")
