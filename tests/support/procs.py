"""The machine's processes as /proc shows them, for tests that look for leftovers or kill."""

from __future__ import annotations

import os
from pathlib import Path


def process_table() -> dict[int, tuple[str, int]]:
    """pid -> (command name, parent pid) of every process right now.

    Processes that end while the table is read are skipped.
    """
    table: dict[int, tuple[str, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses; the fields after the last ')'
        # are fixed.
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        table[int(entry)] = (name, int(stat.rsplit(")", 1)[1].split()[1]))
    return table
