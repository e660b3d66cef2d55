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
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# Run as a script from anywhere: the repository root holds tests/support.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.sshd import SshdServer, account_home, start_sshd

REPO = Path(__file__).resolve().parent.parent
WORLDLAND = str(REPO / ".venv" / "bin" / "worldland")
BASHRC = {"plain": "", "sleep": "sleep 0.2\n"}


def _client_cpu() -> float:
    """CPU seconds of every process this bench started and reaped (the client side)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _make_tree(top: Path, files: int, size: int) -> None:
    top.mkdir(parents=True)
    for i in range(files):
        (top / f"f{i:05d}.bin").write_bytes(os.urandom(size))


def _ssh_options(server: SshdServer) -> list[str]:
    return [
        *("-F", "none", "-i", str(server.client_key)),
        *("-o", f"UserKnownHostsFile={server.known_hosts}", "-o", "BatchMode=yes"),
    ]


def _run(argv: list[str], batch: str | None = None) -> None:
    subprocess.run(
        argv,
        input=batch,
        text=True,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


class Cases:
    """The commands of one account, each moving ``tree`` one way."""

    def __init__(self, server: SshdServer, work: Path, tree: Path) -> None:
        self.server = server
        self.tree = tree
        self.remote = work / "remote"  # what a send fills
        self.pod_tree = work / "pod" / tree.name  # what a receive reads
        self.local = work / "local"  # what a receive fills
        self.pod_tree.parent.mkdir(parents=True, exist_ok=True)
        if not self.pod_tree.exists():
            shutil.copytree(tree, self.pod_tree)
        self.host = f"{server.user}@{server.host}"
        self.auth = [
            *("--identity", str(server.client_key)),
            *("--known-hosts", str(server.known_hosts)),
        ]

    def clear(self, where: Path) -> Callable[[], None]:
        def clear() -> None:
            shutil.rmtree(where, ignore_errors=True)
            where.mkdir()

        return clear

    def all(self) -> dict[str, tuple[Callable[[], None], Callable[[], None]]]:
        s, ssh = self.server, _ssh_options(self.server)
        sftp = ["sftp", "-q", *ssh, "-P", str(s.port), "-b", "-", self.host]
        scp = ["scp", "-q", "-r", *ssh, "-P", str(s.port)]
        rsync = ["rsync", "-a", "-e", " ".join(["ssh", *ssh, "-p", str(s.port)])]
        remote, local, tree, pod = self.remote, self.local, self.tree, self.pod_tree
        return {
            "send    worldland": (
                lambda: _run([WORLDLAND, "send", str(tree), s.url(str(remote)), *self.auth]),
                self.clear(remote),
            ),
            "send    sftp -b": (
                lambda: _run(sftp, f"put -r {tree} {remote}/\n"),
                self.clear(remote),
            ),
            "send    scp -r": (
                lambda: _run([*scp, str(tree), f"{self.host}:{remote}/"]),
                self.clear(remote),
            ),
            "send    rsync": (
                lambda: _run([*rsync, str(tree), f"{self.host}:{remote}/"]),
                self.clear(remote),
            ),
            "receive worldland": (
                lambda: _run([WORLDLAND, "receive", s.url(str(pod)), str(local), *self.auth]),
                self.clear(local),
            ),
            "receive sftp -b": (
                lambda: _run(sftp, f"get -r {pod} {local}/\n"),
                self.clear(local),
            ),
            "receive scp -r": (
                lambda: _run([*scp, f"{self.host}:{pod}", f"{local}/"]),
                self.clear(local),
            ),
            "receive rsync": (
                lambda: _run([*rsync, f"{self.host}:{pod}", f"{local}/"]),
                self.clear(local),
            ),
        }


def _timed(action: Callable[[], None], cleanup: Callable[[], None]) -> tuple[float, float]:
    """(wall seconds, client CPU seconds) of one run, from a clean destination."""
    cleanup()
    busy = _client_cpu()
    began = time.perf_counter()
    action()
    elapsed = time.perf_counter() - began
    return elapsed, _client_cpu() - busy


def _account(
    name: str, work: Path, tree: Path, rounds: int
) -> dict[str, tuple[list[float], list[float]]]:
    """Every case for one account: (wall seconds, CPU seconds) per round."""
    if name == "pyenv":
        extra: list[str] = []  # this machine's own root account and its ~/.bashrc
    else:
        extra = account_home(work / f"home-{name}", BASHRC[name])
    figures: dict[str, tuple[list[float], list[float]]] = {}
    with start_sshd(work / f"sshd-{name}", extra_config=extra) as server:
        cases = Cases(server, work, tree).all()
        for _ in range(rounds):
            for case, (action, cleanup) in cases.items():
                wall, busy = _timed(action, cleanup)
                walls, cpus = figures.setdefault(case, ([], []))
                walls.append(wall)
                cpus.append(busy)
    return figures


def _report(name: str, figures: dict[str, tuple[list[float], list[float]]]) -> None:
    median = {case: statistics.median(walls) for case, (walls, _) in figures.items()}
    print(f"  account {name}:")
    for case, (walls, cpus) in figures.items():
        print(
            f"    {case:20s} {median[case]:6.2f} s  [{min(walls):.2f}-{max(walls):.2f}]"
            f"   client cpu {statistics.median(cpus):5.2f} s"
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
    for tool in ("sftp", "scp", "rsync"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install openssh-client rsync)")
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="worldland-bench-tree-"))
    results: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    try:
        tree = work / "src" / "tree"
        _make_tree(tree, args.files, args.size)
        for name in accounts:
            results[name] = _account(name, work, tree, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{args.files} x {args.size} B over loopback, whole processes, median of {args.rounds} "
        f"[min-max]; {os.cpu_count()} x {_cpu_name()}; load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after"
    )
    for name, figures in results.items():
        _report(name, figures)


if __name__ == "__main__":
    main()
