"""installers/install.sh: a fresh host to `worldland doctor` in one command, idempotent.

The installer runs for real, into temporary folders, from a wheel built from this checkout
(its dependencies come from the package index, as on a provider's host). Only apt-get is
faked, for the host that has no Python 3.11 with venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALLER = REPO / "installers" / "install.sh"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALLER), *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_shellcheck_finds_nothing() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (make test installs it as root)")
    result = subprocess.run([shellcheck, str(INSTALLER)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "unknown option: --bogus"),
        (["--prefix"], "--prefix needs a value"),
        (["--from-wheel", "a.whl", "--wheelhouse", "."], "do not go together"),
        (["--from-wheel", "a.whl", "--version", "1"], "do not go together"),
    ],
)
def test_usage_errors_exit_2_with_the_usage(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Usage: install.sh" in result.stderr


@dataclass
class Installed:
    prefix: Path
    bin_dir: Path
    wheel: Path
    first: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    work = tmp_path_factory.mktemp("install")
    # Built from a copy without the checkout's own build/ (setuptools reuses a stale one).
    source = work / "source"
    shutil.copytree(
        REPO, source, symlinks=True,
        ignore=shutil.ignore_patterns(".git", ".venv", "build", "node_modules", "*.egg-info"),
    )  # fmt: skip
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work), str(source)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = work.glob("worldland-*.whl")
    prefix, bin_dir = work / "opt" / "worldland", work / "bin"
    first = run("--prefix", str(prefix), "--bin-dir", str(bin_dir), "--from-wheel", str(wheel))
    yield Installed(prefix, bin_dir, wheel, first)


def test_a_wheel_installs_links_and_runs_doctor(installed: Installed) -> None:
    result = installed.first
    assert result.returncode == 0, result.stderr
    assert f"created {installed.prefix}" in result.stdout
    assert "installed worldland 0.1.0" in result.stdout
    link = installed.bin_dir / "worldland"
    assert os.readlink(link) == str(installed.prefix / "bin" / "worldland")
    assert "running: worldland doctor" in result.stdout
    assert "NOT READY" in result.stdout or "READY" in result.stdout
    doctor = subprocess.run([str(link), "doctor", "--json"], capture_output=True, text=True)
    report = json.loads(doctor.stdout)
    assert {check["id"] for check in report["checks"]} >= {"gpu.driver", "containerd.installed"}
    assert report["ready"] is False


def test_a_second_run_changes_nothing_and_says_so(installed: Installed) -> None:
    stamp = installed.prefix / ".worldland-install"
    before = stamp.stat().st_mtime_ns
    again = run(
        "--prefix", str(installed.prefix), "--bin-dir", str(installed.bin_dir),
        "--from-wheel", str(installed.wheel), "--no-doctor",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "worldland 0.1.0 is already installed" in again.stdout
    assert again.stdout.strip().endswith("nothing changed")
    assert stamp.stat().st_mtime_ns == before


def test_a_file_that_is_not_our_link_is_left_alone(installed: Installed, tmp_path: Path) -> None:
    theirs = tmp_path / "worldland"
    theirs.write_text("#!/bin/sh\necho mine\n")
    result = run(
        "--prefix", str(installed.prefix), "--bin-dir", str(tmp_path),
        "--from-wheel", str(installed.wheel), "--no-doctor",
    )  # fmt: skip
    assert result.returncode == 1
    assert f"{theirs} exists and is not a link" in result.stderr
    assert theirs.read_text() == "#!/bin/sh\necho mine\n"


def test_without_python_311_it_asks_apt_for_one(tmp_path: Path) -> None:
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    for name in ("python3", "python3.11", "python3.12", "python3.13"):
        tool = fakes / name
        tool.write_text("#!/bin/sh\nexit 1\n")  # no usable Python 3.11+ with venv
        tool.chmod(0o755)
    calls = tmp_path / "apt-calls"
    apt = fakes / "apt-get"
    apt.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    apt.chmod(0o755)
    env = {**os.environ, "PATH": f"{fakes}:/usr/bin:/bin"}
    env.pop("PYTHON", None)
    result = run("--prefix", str(tmp_path / "p"), "--bin-dir", str(tmp_path / "b"), env=env)
    if os.geteuid() != 0:
        assert result.returncode == 1 and "installing one needs root" in result.stderr
        return
    assert result.returncode == 1
    assert calls.read_text().splitlines() == [
        "update -qq",
        "install -y -qq --no-install-recommends python3.11 python3.11-venv",
    ]
    assert "no Python 3.11 or newer with the venv module" in result.stderr
    assert not (tmp_path / "p").exists()


def test_the_installed_copy_renders_every_template(installed: Installed) -> None:
    """templates/ ships inside the wheel: an installed worldland renders the same files."""
    shipped = sorted(p.name for p in (REPO / "templates").iterdir() if p.suffix != ".md")
    probe = (
        "import importlib.resources as r, json; "
        "t = r.files('worldland_cli').joinpath('templates'); "
        "print(json.dumps(sorted(p.name for p in t.iterdir() if not p.name.endswith('.md'))))"
    )
    python = installed.prefix / "bin" / "python"
    listed = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == shipped
    render = (
        "from worldland_cli.templating import render; "
        "print(render('sysctl-kubernetes.conf', sysctls={'net.ipv4.ip_forward': '1'}), end='')"
    )
    rendered = subprocess.run([str(python), "-c", render], capture_output=True, text=True)
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout.endswith("net.ipv4.ip_forward = 1\n")


def test_the_installed_copy_opens_every_doc_doctor_points_at(installed: Installed) -> None:
    """docs/ ships inside the wheel: `worldland docs TOPIC` works where there is no checkout."""
    link = installed.bin_dir / "worldland"
    listed = subprocess.run([str(link), "docs", "--json"], capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert set(json.loads(listed.stdout)["topics"]) == {
        p.stem for p in (REPO / "docs").glob("*.md")
    }
    doctor = json.loads(
        subprocess.run([str(link), "doctor", "--json"], capture_output=True, text=True).stdout
    )
    pointed = {c["doc"] for c in doctor["checks"] if c["doc"]} | {f["doc"] for f in doctor["fixes"]}
    assert pointed, "doctor pointed at no doc on this host"
    for topic in sorted(t for t in pointed if t):
        shown = subprocess.run([str(link), "docs", topic], capture_output=True, text=True)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith("## "), shown.stdout[:80]
