"""Benchmark: `worldland send/receive`'s engine against OpenSSH `sftp -b`, same sshd, same run.

    .venv/bin/python bench/transfer.py [--size-mib 1024] [--rounds 3]

Starts a real sshd on loopback (tests/support/sshd.py), moves one random file each way with
both tools, alternating, and prints the median MB/s of each and the ratio (ours / sftp).
Ours is the whole verified transfer: .part, sha256 on both ends, fsync, rename. sftp -b
copies without any of that; sftp -b -f (OpenSSH's own flush-to-disk option) is shown too, as
the peer with the same durability. Each tool uses the cipher it negotiates by default (ours
prefers AES-GCM, OpenSSH's client chacha20-poly1305); sftp with -c aes128-gcm is shown too.
The load average is printed with the figures: on a shared 2-core machine the spread between
runs is larger than most changes being measured. So is the machine's CPU time per GiB (all
processes, from /proc/stat: both ends, ssh, sshd, sftp-server), which varies far less than
the rates and says what a change really costs on a CPU-bound link.
"""

from __future__ import annotations

import argparse
import asyncio
import os
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

from tests.support.sshd import SshdServer, start_sshd
from worldland_cli.transfer.download import download
from worldland_cli.transfer.ssh import Credentials
from worldland_cli.transfer.targets import parse_ssh_url
from worldland_cli.transfer.upload import upload

GCM = "aes128-gcm@openssh.com"


def _make_source(path: Path, size: int) -> None:
    with path.open("wb") as f:
        for _ in range(size // (1 << 20)):
            f.write(os.urandom(1 << 20))


def _sftp(server: SshdServer, batch: str, cipher: str | None, flush: bool = False) -> None:
    argv = ["sftp", "-q", "-i", str(server.client_key), "-P", str(server.port)]
    argv += ["-o", f"UserKnownHostsFile={server.known_hosts}", "-o", "BatchMode=yes"]
    if cipher:
        argv += ["-c", cipher]
    if flush:
        argv.append("-f")
    argv += ["-b", "-", f"{server.user}@{server.host}"]
    subprocess.run(argv, input=batch, text=True, check=True, stdout=subprocess.DEVNULL)


def _busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (0.0 where /proc is missing)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _timed(action: Callable[[], object], cleanup: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, machine CPU seconds) of one run."""
    cleanup()
    busy = _busy_seconds()
    began = time.perf_counter()
    action()
    elapsed = time.perf_counter() - began
    busy = _busy_seconds() - busy
    cleanup()
    return elapsed, busy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib << 20
    # The development machine is shared; the load says how much the figures can be trusted.
    load_before = os.getloadavg()[0]

    work = Path(tempfile.mkdtemp(prefix="worldland-bench-"))
    try:
        src = work / "source.bin"
        _make_source(src, size)
        remote_dir, local_dir = work / "remote", work / "local"
        remote_dir.mkdir()
        local_dir.mkdir()
        remote_src = work / "remote-source.bin"
        shutil.copyfile(src, remote_src)
        with start_sshd(work / "sshd") as server:
            creds = Credentials(identity=server.client_key, known_hosts=server.known_hosts)
            to_dir = parse_ssh_url(server.url(str(remote_dir)), server.user)
            from_file = parse_ssh_url(server.url(str(remote_src)), server.user)

            def clear_remote() -> None:
                for p in remote_dir.iterdir():
                    p.unlink()

            def clear_local() -> None:
                for p in local_dir.iterdir():
                    p.unlink()

            cases: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
                "send    worldland": (
                    lambda: asyncio.run(upload([src], to_dir, creds)),
                    clear_remote,
                ),
                "send    sftp -b": (
                    lambda: _sftp(server, f"put {src} {remote_dir}/source.bin\n", None),
                    clear_remote,
                ),
                "send    sftp -b -c gcm": (
                    lambda: _sftp(server, f"put {src} {remote_dir}/source.bin\n", GCM),
                    clear_remote,
                ),
                "send    sftp -b -f": (
                    lambda: _sftp(server, f"put {src} {remote_dir}/source.bin\n", None, True),
                    clear_remote,
                ),
                "receive worldland": (
                    lambda: asyncio.run(download(from_file, local_dir, creds)),
                    clear_local,
                ),
                "receive sftp -b": (
                    lambda: _sftp(server, f"get {remote_src} {local_dir}/x.bin\n", None),
                    clear_local,
                ),
                "receive sftp -b -c gcm": (
                    lambda: _sftp(server, f"get {remote_src} {local_dir}/x.bin\n", GCM),
                    clear_local,
                ),
                "receive sftp -b -f": (
                    lambda: _sftp(server, f"get {remote_src} {local_dir}/x.bin\n", None, True),
                    clear_local,
                ),
            }
            rates: dict[str, list[float]] = {name: [] for name in cases}
            cpu: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(args.rounds):
                for name, (action, cleanup) in cases.items():
                    wall, busy = _timed(action, cleanup)
                    rates[name].append(size / 1e6 / wall)
                    cpu[name].append(busy / (size / (1 << 30)))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    median = {name: statistics.median(values) for name, values in rates.items()}
    print(
        f"{args.size_mib} MiB over loopback, median of {args.rounds} (MB/s; rounds in brackets; "
        f"machine CPU s per GiB); load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after"
    )
    for name, values in rates.items():
        shown = " ".join(f"{v:.0f}" for v in values)
        print(
            f"  {name:24s} {median[name]:7.1f}   [{shown}]   "
            f"cpu {statistics.median(cpu[name]):.2f} s/GiB"
        )
    for way in ("send", "receive"):
        ours = median[f"{way:7s} worldland"]
        print(
            f"  ratio {way:7s} worldland / sftp -b: {ours / median[f'{way:7s} sftp -b']:.2f}"
            f"   (/ sftp -b -c gcm: {ours / median[f'{way:7s} sftp -b -c gcm']:.2f};"
            f" / sftp -b -f: {ours / median[f'{way:7s} sftp -b -f']:.2f})"
        )


if __name__ == "__main__":
    main()
