"""What a transfer has done so far, file by file: the results, the progress, the summary.

Apart from the engine because it is bookkeeping both of the engine's flows share (the one
file at a time, and small files packed) and that the summary is built from; none of it
touches a connection or a disk.
"""

from __future__ import annotations

from worldland_cli.transfer.display import shown
from worldland_cli.transfer.farside import LateJob
from worldland_cli.transfer.model import Entry, FileResult, Leg, Skipped, Summary
from worldland_cli.transfer.progress import ProgressSink


class Tally:
    """The planned files and what became of each; progress hears of every byte once."""

    def __init__(self, progress: ProgressSink) -> None:
        self.progress = progress
        self.files: list[Entry] = []  # the files to move, once planned
        self.results: dict[str, FileResult] = {}
        self.marks: dict[str, int] = {}  # how far progress has been told, per file
        self.skipped: list[Skipped] = []
        self.unchanged: list[str] = []  # files the same at the destination: not moved
        self.excluded = 0
        self.followers: dict[str, LateJob] = {}  # far-side hashes told of each acknowledgement

    def add_files(self, files: list[Entry]) -> None:
        """The planned files: each gets its result and joins the progress total."""
        self.files = files
        for f in files:
            self.results[f.rel] = FileResult(path=f.rel, size=f.size)
            self.progress.add_total(f.size)

    def skip(self, skipped: Skipped) -> None:
        """Leave something out, with a note now and a line in --json's ``skipped``."""
        self.skipped.append(skipped)
        hint = f" ({skipped.hint})" if skipped.hint else ""
        self.progress.note(f"skipping {shown(skipped.path)}: {shown(skipped.reason)}{hint}")

    def same(self, entry: Entry) -> None:
        """A file already at the destination with the same size and sha256: skipped."""
        result = self.results[entry.rel]
        if not result.done:
            result.done = True
            self.unchanged.append(entry.rel)
            self.progress.skip(entry.size)

    def start_attempt(self, entry: Entry) -> FileResult:
        result = self.results[entry.rel]
        result.attempts += 1
        result.bytes_after_resume = 0
        return result

    def resumed(self, result: FileResult, start: int, kept: str = "prefix verified") -> None:
        """``start`` bytes of the file are there already (``kept``: how they were judged)."""
        result.resumed_from = start
        mark = self.marks.get(result.path, 0)
        if start > mark:
            self.progress.skip(start - mark)
            self.marks[result.path] = start
        if start:
            self.progress.note(f"{shown(result.path)}: resuming, {start} bytes there ({kept})")

    def moved(self, result: FileResult, nbytes: int, reached: int) -> None:
        result.bytes_moved += nbytes
        result.bytes_after_resume += nbytes
        follower = self.followers.get(result.path)
        if follower is not None:
            follower.advance(reached)
        mark = self.marks.get(result.path, 0)
        if reached > mark:
            self.progress.advance(reached - mark)
            self.marks[result.path] = reached

    def packed_done(self, leg: Leg, sha256: str) -> None:
        """A packed file verified on both sides and under its name."""
        result = self.start_attempt(leg.entry)
        result.sha256, result.verified_by, result.done = sha256, "remote-exec", True
        result.carried_by = "packed"
        result.bytes_moved += leg.entry.size
        result.bytes_after_resume = leg.entry.size
        self.progress.advance(leg.entry.size)

    def summary(self, direction: str, source: str, destination: str) -> Summary:
        """The --json document so far: the files moved (not those already there)."""
        unchanged = set(self.unchanged)
        return Summary(
            direction=direction,
            source=source,
            destination=destination,
            files=[
                self.results[f.rel]
                for f in self.files
                if self.results[f.rel].done and f.rel not in unchanged
            ],
            skipped=self.skipped,
            unchanged=self.unchanged,
            excluded=self.excluded,
        )
