"""Benchmark: whole `worldland send` / `worldland receive` processes against sftp, scp and rsync.

    .venv/bin/python bench/transfer.py [--cases loopback,wan,wan-1k,tree] [--rounds 3]
        [--size-mib 1024] [--wan-size-mib 128] [--rtt-ms 100] [--mbit 400]
        [--files 2000] [--file-size 4096] [--account plain]

    # quick checks (a few minutes on 2 shared cores):
    .venv/bin/python bench/transfer.py --cases wan-1k,wan --wan-size-mib 16 --rounds 1
    .venv/bin/python bench/transfer.py --cases loopback --size-mib 64 --rounds 1
    # the 1 GiB WAN figure:
    .venv/bin/python bench/transfer.py --cases wan --wan-size-mib 1024

Times what a user runs: the venv's `bin/worldland send FILE ssh://...` and `worldland receive
ssh://.../FILE DIR`, start-up included (its modules compiled first, as `pip install` leaves
them), against `sftp -b` (put / get), `scp -q` and `rsync -a -e ssh`, all on the same real
OpenSSH sshd (tests/support/sshd.py) in the same run. In each
round every tool runs once each way, in turn, N rounds; each run starts from an empty
destination (cleared, and the page cache written back, outside the timing) and what arrived
is checked afterwards. Sources are random bytes made once. The peers run with `-F none` and
BatchMode; every tool checks the host key. The sshd account has its own HOME and an empty
~/.bashrc (--account sleep: one that sleeps 0.2 s; pyenv: this machine's root account).

Cases, and the targets printed for them:

* ``loopback``: one --size-mib file each way, straight to the sshd on 127.0.0.1; target:
  worldland at least as fast as `sftp -b` (speed ratio >= 1.0) with no more machine CPU per
  GiB than sftp's. A reference runs beside the peers (not one of them: no ratio, no target):
  `sftp -b -c aes128-gcm@openssh.com`, the copy with our OpenSSH lane's cipher; with one
  sha256 pass's CPU per GiB measured at start (hashlib), it gives the "floor" line: what a
  copy verified by sha256 on both ends costs at least, here;
* ``wan``: one --wan-size-mib file each way through bench/wanrelay.py, a user-space long fat
  link (--rtt-ms round trip, --mbit shared by every connection, a bounded queue); target:
  worldland >= 1.5x as fast as the best peer (at 128 MiB and at 1 GiB);
* ``wan-1k``: a 1 KiB file each way through the same relay (start-up and round trips);
  target: worldland's time <= 1.3x sftp -b's (speed ratio >= 0.77);
* ``tree``: --files x --file-size files each way on loopback (bench/transfer_tree.py's
  cases); target: worldland's time <= 1.5x rsync's (speed ratio >= 0.67).

worldland's figure is its whole verified transfer (staging name, sha256 on both ends, fsync,
rename); the peers copy. The figures, per tool and direction: the median seconds and
[min-max] of the rounds; MB/s (bytes moved / median, 1 MB = 10^6 B); the client side's CPU
seconds ("client": getrusage of the processes the bench started, worldland or sftp/scp/rsync
and their ssh); both ends' ("ends": that plus the sshd side, every session process and what
it ran, as the sshd listener reaped them, and any of them that outlived its session, as the
bench reaped it: worldland's far-side helper does); and the whole machine's ("machine":
busy time from /proc/stat across that one command, less the bench's own process, which is
where the relay runs), per GiB for the large-file cases. "machine" also counts the kernel's
writeback and, on a shared machine, everyone else's work, so on a slow link it says more
about the neighbours than the tools; "ends" does not.

The speed ratio is a peer's median time / worldland's median time: above 1, worldland is
faster. Each direction prints its ratio to the best (fastest) peer and to every peer, then
its "target" line (a figure to aim for, met or NOT met; not an assert). WAN cases also print
the link's floor (wanrelay's floor(): the bytes' serialisation at the rate plus one one-way
delay; handshakes not included) and each tool's time / floor.

The machine is usually shared: its CPUs, the load average before and after, the OpenSSH
version, the commit and the command line are printed with the figures. Ratios within one run
mean more than the absolute times, which move with the load.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Run as a script from anywhere: the repository root holds tests/support and bench.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    REPO,
    Case,
    Endpoint,
    Samples,
    account_config,
    compile_bytecode,
    machine_line,
    make_file,
    make_tree,
    measure,
    openssh_version,
    require_tools,
    tool_cases,
)
from bench.transfer_tree import Cases as TreeCases
from bench.wanrelay import WanRelay
from tests.support.sshd import SshdServer, start_sshd

CASES = ("loopback", "wan", "wan-1k", "tree")
GIB = 1 << 30
RATIO = "speed ratio = peer's time / worldland's time (> 1: worldland is faster)"


def file_cases(end: Endpoint, source: Path, work: Path, reference: bool = False) -> list[Case]:
    """One file each way with every tool; the far side reads a hard link to ``source``.

    ``reference``: and :data:`REFERENCE` each way, after the peers.
    """
    pod = work / "pod" / source.name  # what a receive reads
    pod.parent.mkdir(parents=True)
    os.link(source, pod)
    remote, local = work / "remote", work / "local"  # what a send, a receive fills
    size = source.stat().st_size

    def landed(where: Path) -> Callable[[], None]:
        def check() -> None:
            got = (where / source.name).stat().st_size
            if got != size:
                raise RuntimeError(f"{where / source.name}: {got} bytes, not {size}")

        return check

    cases = tool_cases(end, source, pod, (remote, local), landed)
    if reference:
        gcm = ("-c", "aes128-gcm@openssh.com")
        cases += [
            dataclasses.replace(case, name=f"{case.way:7s} {REFERENCE}")
            for case in tool_cases(end, source, pod, (remote, local), landed, sftp_flags=gcm)
            if case.tool == "sftp -b"
        ]
    return cases


# The reference beside the peers on loopback: `sftp -b` with the OpenSSH lane's cipher. Not a
# peer (not in "best peer", no target): it says what the copy itself costs with that cipher,
# so that the floor of a verified copy can be printed (_report).
REFERENCE = "sftp -b (aes-gcm)"


def sha256_seconds_per_gib() -> float:
    """What one sha256 pass costs this machine per GiB (hashlib, as both ends use it)."""
    block = os.urandom(16 << 20)
    digest = hashlib.sha256()
    began = time.process_time()
    for _ in range(16):  # 256 MiB
        digest.update(block)
    return (time.process_time() - began) * 4


@dataclass
class Target:
    """What worldland should reach against one peer: a least speed ratio, maybe CPU too."""

    peer: str  # "best" or a tool's name
    least: float  # the speed ratio to reach (peer's time / worldland's)
    says: str
    cpu: bool = False  # also: machine CPU per GiB no higher than the peer's


@dataclass
class Spec:
    name: str
    title: str
    nbytes: int  # bytes moved one way
    large: bool  # machine CPU shown per GiB
    relay: WanRelay | None
    targets: list[Target]
    cases: list[Case]


def _specs(
    args: argparse.Namespace, server: SshdServer, work: Path, relay: WanRelay | None
) -> list[Spec]:
    direct = Endpoint.direct(server)
    specs: list[Spec] = []
    for name in args.cases:
        where = work / name
        if name == "tree":
            tree = where / "src" / "tree"
            make_tree(tree, args.files, args.file_size)
            specs.append(
                Spec(
                    name,
                    f"{args.files} x {args.file_size} B each way, loopback",
                    args.files * args.file_size,
                    False,
                    None,
                    [Target("rsync", 1 / 1.5, "worldland's time <= 1.5x rsync's")],
                    TreeCases(server, where, tree).all(),
                )
            )
            continue
        if name == "loopback":
            nbytes, end, over = args.size_mib << 20, direct, None
            title = f"{args.size_mib} MiB each way, loopback"
            targets = [
                Target(
                    "sftp -b",
                    1.0,
                    "worldland >= 1.0x as fast as sftp -b, machine CPU/GiB <= sftp -b's",
                    cpu=True,
                )
            ]
        else:
            assert relay is not None
            over = relay
            end = Endpoint.relayed(server, relay.port, work / "known_hosts-relay")
            link = f"WAN relay {args.rtt_ms:g} ms RTT, {args.mbit:g} Mbit/s"
            if name == "wan":
                nbytes = args.wan_size_mib << 20
                title = f"{args.wan_size_mib} MiB each way, {link}"
                targets = [Target("best", 1.5, "worldland >= 1.5x as fast as the best peer")]
            else:
                nbytes, title = 1024, f"1 KiB each way, {link}"
                targets = [Target("sftp -b", 1 / 1.3, "worldland's time <= 1.3x sftp -b's")]
        source = where / "src" / "payload.bin"
        make_file(source, nbytes)
        cases = file_cases(end, source, where, reference=name == "loopback")
        specs.append(Spec(name, title, nbytes, name != "wan-1k", over, targets, cases))
    return specs


def _rate(nbytes: int, seconds: float) -> str:
    rate = nbytes / 1e6 / seconds
    return f"{rate:8.2f} MB/s" if rate >= 0.01 else f"{rate:8.1e} MB/s"


def _report(spec: Spec, figures: dict[str, Samples], sha256: float) -> None:
    """``sha256``: one pass's CPU seconds per GiB here, for the floor of a verified copy."""
    print(f"\n{spec.name}: {spec.title}")
    floor = spec.relay.floor(spec.nbytes) if spec.relay else None
    if floor is not None:
        print(f"  link floor {floor:.3f} s (serialisation at the rate + one one-way delay)")
    per = spec.nbytes / GIB if spec.large else 1.0
    unit = "s/GiB" if spec.large else "s"

    def per_gib(cpu: list[float]) -> float:
        return statistics.median(cpu) / per

    width = max(20, *(len(name) for name in figures))
    for name, samples in figures.items():
        line = (
            f"  {name:{width}s} {samples.spread()}  {_rate(spec.nbytes, samples.median)}"
            f"   cpu: client {statistics.median(samples.clients):5.2f} s"
            f"  ends {per_gib(samples.ends):6.2f} {unit}"
            f"  machine {per_gib(samples.machines):6.2f} {unit}"
        )
        if floor is not None:
            line += f"   {samples.median / floor:6.2f}x floor"
        print(line)
    for way in ("send", "receive"):
        ours = figures[f"{way:7s} worldland"]
        peers = {
            n.split(None, 1)[1]: s
            for n, s in figures.items()
            if n.split(None, 1)[0] == way and not n.endswith(("worldland", REFERENCE))
        }
        best = min(peers, key=lambda tool: peers[tool].median)
        speed = {tool: s.median / ours.median for tool, s in peers.items()}
        others = "  ".join(f"{tool} {r:.2f}" for tool, r in speed.items())
        print(f"  {way:7s} speed ratio vs best peer ({best}): {speed[best]:.2f}   ({others})")
        for target in spec.targets:
            peer = best if target.peer == "best" else target.peer
            theirs = peers[peer]
            met = speed[peer] >= target.least
            shown = f"ratio vs {peer} {speed[peer]:.2f}, needs >= {target.least:.2f}"
            if target.cpu:
                mine, its = per_gib(ours.machines), per_gib(theirs.machines)
                met = met and mine <= its
                shown += (
                    f"; machine cpu {mine:.2f} vs {its:.2f} {unit}"
                    f" (ends {per_gib(ours.ends):.2f} vs {per_gib(theirs.ends):.2f})"
                )
            verdict = "met" if met else "NOT met"
            print(f"    target {way}: {target.says}: {shown}: {verdict}")
        reference = figures.get(f"{way:7s} {REFERENCE}")
        if reference is not None:
            copy, sha = per_gib(reference.machines), sha256
            print(
                f"    floor {way}: a verified copy costs >= {copy + 2 * sha:.2f} s/GiB of machine"
                f" CPU here: {REFERENCE}'s {copy:.2f}, plus two sha256 passes of {sha:.2f}"
            )


def _commit() -> str:
    def git(*argv: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(REPO), *argv], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" (with uncommitted changes)" if git("status", "--porcelain") else "")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default=",".join(CASES), help=", ".join(CASES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=1024, help="loopback file")
    parser.add_argument("--wan-size-mib", type=int, default=128, help="wan file")
    parser.add_argument("--rtt-ms", type=float, default=100.0)
    parser.add_argument("--mbit", type=float, default=400.0)
    parser.add_argument("--files", type=int, default=2000, help="tree: how many files")
    parser.add_argument("--file-size", type=int, default=4096, help="tree: bytes each")
    parser.add_argument("--account", default="plain", help="plain, sleep or pyenv")
    args = parser.parse_args()
    args.cases = [c for c in args.cases.split(",") if c]
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown or not args.cases or args.rounds < 1:
        parser.error(f"--cases: some of {', '.join(CASES)}; --rounds >= 1")
    require_tools()
    compile_bytecode()
    sha256 = sha256_seconds_per_gib()

    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"commit {_commit()}; {machine_line()}; {openssh_version()}")
    print(f"{RATIO}; median of {args.rounds} [min-max]; account {args.account}")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="worldland-bench-transfer-"))
    try:
        extra = account_config(args.account, work)
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(start_sshd(work / "sshd", extra_config=extra))
            relay = None
            if {"wan", "wan-1k"} & set(args.cases):
                relay = WanRelay((server.host, server.port), args.rtt_ms / 1000, args.mbit)
                stack.callback(relay.close)
            for spec in _specs(args, server, work, relay):
                _report(spec, measure(spec.cases, args.rounds, server), sha256)
                sys.stdout.flush()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
