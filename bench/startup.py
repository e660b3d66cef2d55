"""Start-up time of `worldland --help` and `worldland doctor --json`, against `python -c pass`.

The peer is the interpreter's own start-up: the ratio says what the CLI adds on top of
Python itself. Target: `worldland --help` within 150 ms on the median.

    .venv/bin/python bench/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def median_ms(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    exe = Path(sys.executable).with_name("worldland")
    cli = [str(exe)] if exe.exists() else [sys.executable, "-m", "worldland_cli.main"]
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "worldland --help": [*cli, "--help"],
        "worldland doctor --json": [*cli, "doctor", "--json"],
    }
    base = None
    print(f"median of {args.runs} runs each")
    for name, argv in cases.items():
        ms = median_ms(argv, args.runs)
        base = base or ms
        print(f"{name:26s} {ms:8.1f} ms   x{ms / base:5.2f} of python -c pass")


if __name__ == "__main__":
    main()
