"""Errors a person can act on (issue 14): one line, the documented exit code, --json or not.

Real ``worldland`` processes against a real sshd. Tests run as root, so a file mode denies
nothing until root gives up the capabilities that override it (``NO_DAC_OVERRIDE``): the
process under test does, or the sshd playing the pod does. A full disk is a small tmpfs,
mounted where this machine allows it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sshd import NO_DAC_OVERRIDE, SshdServer, sshd_missing_reason, start_sshd
from tests.transfer.conftest import random_file, sha256_of

WORLDLAND = str(Path(sys.executable).with_name("worldland"))
SMALL, LARGE = 1000, 9 << 20  # packed through the far-side helper; alone, through the lane
SIZES = pytest.mark.parametrize("size", [SMALL, LARGE], ids=["packed", "alone"])
JSON = pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])


def worldland(
    sshd: SshdServer, *args: str, as_json: bool = False, denied: bool = False
) -> tuple[int, str, dict[str, object] | None]:
    """Run ``worldland ARGS`` (as root without DAC override if ``denied``): its exit code,
    its one error line (or the whole stdout), and the --json document."""
    argv = [WORLDLAND, *args, "--identity", str(sshd.client_key)]
    argv += ["--known-hosts", str(sshd.known_hosts), *(["--json"] if as_json else [])]
    if denied:
        argv = [*NO_DAC_OVERRIDE, *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in done.stderr, done.stderr
    if as_json:
        doc = json.loads(done.stdout)  # exactly one document
        assert doc["ok"] is (done.returncode == 0)
        return done.returncode, str(doc.get("error", "")), doc
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == (done.returncode != 0), done.stderr
    return done.returncode, " ".join(done.stderr.split()), None


@pytest.fixture
def no_override_sshd(tmp_path: Path) -> Iterator[SshdServer]:
    """A pod whose account is bound by file modes (root without DAC override)."""
    reason = sshd_missing_reason() or (None if shutil.which("setpriv") else "no setpriv")
    if reason:
        pytest.skip(reason)
    with start_sshd(tmp_path / "sshd-denied", prefix=NO_DAC_OVERRIDE) as server:
        yield server


@JSON
@SIZES
def test_a_source_we_may_not_read_is_one_line(
    sshd: SshdServer, tmp_path: Path, size: int, as_json: bool
) -> None:
    secret = random_file(tmp_path / "data" / "secret.bin", size)
    secret.chmod(0)
    url = sshd.url(str(tmp_path / "pod"))
    code, said, _ = worldland(sshd, "send", str(tmp_path / "data"), url, as_json=as_json,
                              denied=True)  # fmt: skip
    assert code == 1
    assert f"permission denied on this computer: cannot read {secret}" in said


@JSON
def test_a_local_dir_we_may_not_write_is_one_line(
    sshd: SshdServer, tmp_path: Path, as_json: bool
) -> None:
    random_file(tmp_path / "pod" / "ckpt" / "a.bin", SMALL)
    back = tmp_path / "back"
    back.mkdir()
    back.chmod(0o555)
    url = sshd.url(str(tmp_path / "pod" / "ckpt"))
    code, said, _ = worldland(sshd, "receive", url, str(back), as_json=as_json, denied=True)
    assert code == 1
    assert f"permission denied on this computer: cannot write {back / 'ckpt'}" in said


@JSON
@SIZES
def test_a_remote_source_the_pod_may_not_read_is_one_line(
    no_override_sshd: SshdServer, tmp_path: Path, size: int, as_json: bool
) -> None:
    secret = random_file(tmp_path / "pod" / "ckpt" / "secret.bin", size)
    secret.chmod(0)
    url = no_override_sshd.url(str(tmp_path / "pod" / "ckpt"))
    code, said, _ = worldland(
        no_override_sshd, "receive", url, str(tmp_path / "back"), as_json=as_json
    )
    assert code == 1
    assert f"permission denied on the remote: cannot read {secret}" in said
    assert not (tmp_path / "back" / "ckpt" / "secret.bin").exists()


@JSON
@SIZES
def test_a_remote_directory_the_pod_may_not_write_is_one_line(
    no_override_sshd: SshdServer, tmp_path: Path, size: int, as_json: bool
) -> None:
    random_file(tmp_path / "data" / "a.bin", size)
    pod = tmp_path / "pod"
    (pod / "data").mkdir(parents=True)
    (pod / "data").chmod(0o555)
    url = no_override_sshd.url(str(pod))
    code, said, _ = worldland(no_override_sshd, "send", str(tmp_path / "data"), url,
                              as_json=as_json)  # fmt: skip
    assert code == 1
    assert "permission denied on the remote: cannot write " + str(pod / "data" / "a.bin") in said


@JSON
def test_a_dead_pod_fails_at_once_with_exit_3(
    sshd: SshdServer, tmp_path: Path, as_json: bool
) -> None:
    random_file(tmp_path / "data" / "a.bin", SMALL)
    sshd.stop()  # the port now refuses connections
    began = time.monotonic()
    code, said, _ = worldland(
        sshd, "send", str(tmp_path / "data"), sshd.url(str(tmp_path / "pod")), as_json=as_json
    )
    assert code == 3 and "cannot reach 127.0.0.1" in said
    assert time.monotonic() - began < 8  # no retries: they waited out 15.5 s of backoff


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, mounted here for the test (skipped where mount is not allowed)."""
    where = tmp_path / "small"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _grow(disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)


@JSON
@pytest.mark.parametrize("size", [2 << 20, 0], ids=["alone", "packed"])
def test_a_full_remote_disk_names_enospc_and_keeps_what_resumes(
    sshd: SshdServer, small_disk: Path, tmp_path: Path, size: int, as_json: bool
) -> None:
    data = tmp_path / "data"
    if size:
        random_file(data / "big.bin", size)
    else:
        for i in range(400):
            random_file(data / f"f{i:03d}.bin", 4096)
    url = sshd.url(str(small_disk))
    code, said, _ = worldland(sshd, "send", str(data), url, as_json=as_json)
    assert code == 1
    assert (
        "no space left on the remote's disk (ENOSPC): cannot write " + str(small_disk / "data")
        in said
    )
    assert " free there)" in said
    assert not [p for p in (small_disk / "data").iterdir() if p.name.endswith(".worldland-tmp")]
    if size:
        assert (small_disk / "data" / "big.bin.part").stat().st_size > 0  # kept to resume
    _grow(small_disk)
    code, _, doc = worldland(sshd, "send", str(data), url, as_json=True)
    assert code == 0 and doc is not None
    moved = {f["path"]: f for f in doc["files"]}  # type: ignore[attr-defined]
    if size:
        assert moved["data/big.bin"]["resumed_from"] > 0
    else:
        assert len(moved) + doc["counts"]["unchanged"] == 400  # type: ignore[index]
    for p in data.iterdir():
        assert sha256_of(p) == sha256_of(small_disk / "data" / p.name)


@JSON
@pytest.mark.parametrize("size", [2 << 20, 0], ids=["alone", "packed"])
def test_a_full_local_disk_names_enospc_and_keeps_what_resumes(
    sshd: SshdServer, small_disk: Path, tmp_path: Path, size: int, as_json: bool
) -> None:
    pod = tmp_path / "pod" / "ckpt"
    if size:
        random_file(pod / "big.bin", size)
    else:
        for i in range(400):
            random_file(pod / f"f{i:03d}.bin", 4096)
    url = sshd.url(str(pod))
    code, said, _ = worldland(sshd, "receive", url, str(small_disk), as_json=as_json)
    assert code == 1
    assert (
        "no space left on this computer's disk (ENOSPC): cannot write " + str(small_disk / "ckpt")
        in said
    )
    assert " free there)" in said
    assert not [p for p in (small_disk / "ckpt").iterdir() if p.name.startswith(".")]
    if size:
        assert (small_disk / "ckpt" / "big.bin.part").stat().st_size > 0  # kept to resume
    _grow(small_disk)
    code, _, doc = worldland(sshd, "receive", url, str(small_disk), as_json=True)
    assert code == 0 and doc is not None
    if size:
        assert doc["files"][0]["resumed_from"] > 0  # type: ignore[index]
    for p in pod.iterdir():
        assert sha256_of(p) == sha256_of(small_disk / "ckpt" / p.name)
    assert sorted(os.listdir(small_disk / "ckpt")) == sorted(os.listdir(pod))  # nothing else


@pytest.mark.parametrize("direction", ["send", "receive"])
def test_a_full_disk_under_several_lanes_is_one_line_and_a_rerun_completes(
    sshd: SshdServer, small_disk: Path, tmp_path: Path, direction: str
) -> None:
    """The lane that met the full disk is what is reported, not the lanes killed after it."""
    if direction == "send":
        src = random_file(tmp_path / "data" / "big.bin", 10 << 20)
        argv = ["send", str(src), sshd.url(str(small_disk)), "--lanes", "3"]
        side, dest = "the remote's", small_disk / "big.bin"
    else:
        src = random_file(tmp_path / "pod" / "big.bin", 10 << 20)
        argv = ["receive", sshd.url(str(src)), str(small_disk), "--lanes", "3"]
        side, dest = "this computer's", small_disk / "big.bin"
    code, said, _ = worldland(sshd, *argv, as_json=False)
    assert code == 1
    assert f"no space left on {side} disk (ENOSPC): cannot write {small_disk}" in said
    assert (small_disk / "big.bin.part").exists()
    _grow(small_disk)
    code, said, doc = worldland(sshd, *argv, as_json=True)
    assert code == 0, said
    assert doc is not None and doc["files"][0]["lanes"] == 3  # type: ignore[index]
    assert sha256_of(dest) == sha256_of(src)
