"""Benchmark: a tree of many small files, whole `worldland` processes against sftp, scp, rsync.

    .venv/bin/python bench/transfer_tree.py [--files 2000] [--size 4096] [--rounds 3]
        [--accounts plain,sleep]

Starts a real sshd on loopback (tests/support/sshd.py) and times whole processes, start-up
included, as a renter runs them: `worldland send DIR ssh://...` and `worldland receive`,
against `sftp -b` (put -r / get -r), `scp -r` and `rsync -a -e ssh`, on the same sshd in the
same run, alternating. Each account is the same user with its own HOME (sshd's SetEnv), so
its ~/.bashrc is the one that runs for every exec channel:

* ``plain``: an empty ~/.bashrc;
* ``sleep``: a ~/.bashrc that sleeps 0.2 s (a pyenv or conda init is as slow or slower);
* ``pyenv``: this machine's own root account, when its ~/.bashrc runs `pyenv init`.

`sftp` and `scp` (SFTP since OpenSSH 9) reach internal-sftp without a shell; rsync starts
`rsync --server` through the shell once; worldland starts its far-side helper once. The
figures are the median and the spread (min-max) of each case, the ratio of worldland's
median to the best peer's, and the client side's CPU seconds per run (the processes the
bench starts: worldland, or sftp/scp/rsync and their ssh; not sshd's side). The machine is
shared: its CPU and load average are printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

# Run as a script from anywhere: the repository root holds tests/support and bench.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    Case,
    Endpoint,
    Samples,
    account_config,
    compile_bytecode,
    machine_line,
    make_tree,
    measure,
    require_tools,
    tool_cases,
)
from tests.support.sshd import SshdServer, start_sshd


def _count_files(top: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(top))


class Cases:
    """The commands of one account, each moving ``tree`` one way."""

    def __init__(self, server: SshdServer, work: Path, tree: Path) -> None:
        self.end = Endpoint.direct(server)
        self.tree = tree
        self.remote = work / "remote"  # what a send fills
        self.pod_tree = work / "pod" / tree.name  # what a receive reads
        self.local = work / "local"  # what a receive fills
        self.pod_tree.parent.mkdir(parents=True, exist_ok=True)
        if not self.pod_tree.exists():
            shutil.copytree(tree, self.pod_tree)
        self.files = _count_files(tree)

    def _landed(self, where: Path) -> None:
        found = _count_files(where / self.tree.name)
        if found != self.files:
            raise RuntimeError(f"{where}: {found} files arrived, not {self.files}")

    def all(self) -> list[Case]:
        def landed(where: Path) -> Callable[[], None]:
            return lambda: self._landed(where)

        into = (self.remote, self.local)
        return tool_cases(self.end, self.tree, self.pod_tree, into, landed, tree=True)


def _account(name: str, work: Path, tree: Path, rounds: int) -> dict[str, Samples]:
    """Every case for one account, ``rounds`` times."""
    with start_sshd(work / f"sshd-{name}", extra_config=account_config(name, work)) as server:
        return measure(Cases(server, work, tree).all(), rounds, server)


def _report(name: str, figures: dict[str, Samples]) -> None:
    median = {case: samples.median for case, samples in figures.items()}
    print(f"  account {name}:")
    for case, samples in figures.items():
        print(
            f"    {case:20s} {samples.spread()}"
            f"   client cpu {statistics.median(samples.clients):5.2f} s"
        )
    for way in ("send", "receive"):
        peers = {c: m for c, m in median.items() if c.startswith(way) and "worldland" not in c}
        best = min(peers, key=lambda c: peers[c])
        ours = median[f"{way:7s} worldland"]
        print(
            f"    ratio {way:7s} worldland / best peer ({best.split(None, 1)[1]}): "
            f"{ours / peers[best]:.2f}   (/ rsync: {ours / median[f'{way:7s} rsync']:.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--accounts", default="plain,sleep")
    args = parser.parse_args()
    accounts = [a for a in args.accounts.split(",") if a]
    require_tools()
    compile_bytecode()
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="worldland-bench-tree-"))
    results: dict[str, dict[str, Samples]] = {}
    try:
        tree = work / "src" / "tree"
        make_tree(tree, args.files, args.size)
        for name in accounts:
            results[name] = _account(name, work, tree, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{args.files} x {args.size} B over loopback, whole processes, median of {args.rounds} "
        f"[min-max]; {machine_line()}; load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after"
    )
    for name, figures in results.items():
        _report(name, figures)


if __name__ == "__main__":
    main()
