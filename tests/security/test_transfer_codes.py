"""A code names one regular file, and ``receive CODE`` checks what was registered (item 6).

The hub keeps what the sender registered: path, name, size and sha256. The sender runs inside
a pod, so a hostile one may register a directory, a symlink, a name such as ``..``, or a size
that is not the file's. The receiver must refuse all of those before anything is written, and
save the file under the registered name.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.hub import RunningHub, start_hub
from tests.support.sshd import SshdServer
from tests.transfer.conftest import random_file, sha256_of
from tests.transfer.test_pod_mode import cli, register_pod, renter
from worldland_cli import config
from worldland_cli.auth.relogin import SignIn, authenticated_client
from worldland_cli.transfer.download import download
from worldland_cli.transfer.errors import UnsafePathError
from worldland_cli.transfer.model import Options, Registered
from worldland_cli.transfer.ssh import Credentials
from worldland_cli.transfer.targets import parse_ssh_url


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    running = start_hub(tmp_path_factory.mktemp("hub"))
    yield running
    running.stop()


def _register(
    hub: RunningHub,
    sshd: SshdServer,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    path: Path,
    name: str,
    size: int,
    sha256: str,
) -> str:
    """A pod's renter registers whatever it likes for a code, as a hostile sender could."""
    pod_id = register_pod(hub, sshd, renter(home, hub, monkeypatch))
    client, _ = authenticated_client(config.load(), SignIn(hub=hub.url))
    with client:
        return client.create_transfer(pod_id, str(path), name, size, sha256).code


def _receive(
    hub: RunningHub, sshd: SshdServer, home: Path, monkeypatch: pytest.MonkeyPatch, code: str
) -> tuple[int, str, Path]:
    renter(home, hub, monkeypatch)
    dest = home / "dest"
    result = cli("receive", code, str(dest), "--hub", hub.url, "--identity", str(sshd.client_key))
    return result.exit_code, result.output, dest


def _digest(path: Path) -> tuple[int, str]:
    return path.stat().st_size, sha256_of(path)


def test_a_code_naming_a_directory_is_refused_and_nothing_is_written(
    hub: RunningHub, sshd: SshdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "pod" / "workspace"
    random_file(tree / "a.bin", 1000)
    random_file(tree / "deep" / "b.bin", 1000)
    code = _register(
        hub, sshd, tmp_path / "s", monkeypatch, tree, "model.pt", 1000, hashlib.sha256().hexdigest()
    )
    status, output, dest = _receive(hub, sshd, tmp_path / "r", monkeypatch, code)
    assert status == 1, output
    assert "is a directory on the pod" in output and "one regular file" in output
    assert not dest.exists() or list(dest.rglob("*")) == []


def test_a_code_naming_a_symlink_is_refused(
    hub: RunningHub, sshd: SshdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = random_file(tmp_path / "pod" / "real.bin", 1000)
    link = tmp_path / "pod" / "model.pt"
    os.symlink(real, link)
    size, digest = _digest(real)
    code = _register(hub, sshd, tmp_path / "s", monkeypatch, link, "model.pt", size, digest)
    status, output, dest = _receive(hub, sshd, tmp_path / "r", monkeypatch, code)
    assert status == 1, output
    assert "is a symlink on the pod" in output
    assert not dest.exists() or list(dest.rglob("*")) == []


def test_a_size_other_than_the_registered_one_is_refused_before_the_download(
    hub: RunningHub, sshd: SshdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = random_file(tmp_path / "pod" / "model.pt", 300_000)
    code = _register(hub, sshd, tmp_path / "s", monkeypatch, src, "model.pt", 1000, "0" * 64)
    status, output, dest = _receive(hub, sshd, tmp_path / "r", monkeypatch, code)
    assert status == 1, output
    assert "300000 bytes on the pod" in output and "registered 1000" in output
    assert not dest.exists() or list(dest.rglob("*")) == []  # not even a .part


def test_the_file_is_saved_under_the_registered_name(
    hub: RunningHub, sshd: SshdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = random_file(tmp_path / "pod" / "step-9000.pt", 1000)
    size, digest = _digest(src)
    code = _register(hub, sshd, tmp_path / "s", monkeypatch, src, "latest.pt", size, digest)
    status, output, dest = _receive(hub, sshd, tmp_path / "r", monkeypatch, code)
    assert status == 0, output
    assert sorted(p.name for p in dest.iterdir()) == ["latest.pt"]
    assert sha256_of(dest / "latest.pt") == digest


@pytest.mark.parametrize("name", ["..", ".", "a/b", "a\\b", "x\0"])
def test_a_registered_name_that_could_escape_is_refused(
    sshd: SshdServer, tmp_path: Path, name: str
) -> None:
    # The hub refuses some of these names itself; the receiver does not rely on that.
    src = random_file(tmp_path / "pod" / "model.pt", 1000)
    size, digest = _digest(src)
    loc = parse_ssh_url(sshd.url(str(src)), "x")
    creds = Credentials(identity=sshd.client_key, known_hosts=sshd.known_hosts)
    dest = tmp_path / "r" / "dest"
    opts = Options(registered=Registered(name, size, digest))
    with pytest.raises(UnsafePathError, match="refusing the remote name"):
        asyncio.run(download(loc, dest, creds, opts))
    assert not (tmp_path / "r").exists()


def test_a_sender_naming_a_symlink_registers_its_file_under_the_typed_name(
    hub: RunningHub, sshd: SshdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = random_file(tmp_path / "pod" / "step-9000.pt", 1000)
    latest = tmp_path / "pod" / "latest.pt"
    os.symlink(step.name, latest)
    pod_id = register_pod(hub, sshd, renter(tmp_path / "s", hub, monkeypatch))
    sent = cli("send", str(latest), "--pod", pod_id, "--hub", hub.url, "--json")
    assert sent.exit_code == 0, sent.output
    code = json.loads(sent.stdout)["code"]
    status, output, dest = _receive(hub, sshd, tmp_path / "r", monkeypatch, code)
    assert status == 0, output
    assert sorted(p.name for p in dest.iterdir()) == ["latest.pt"]
    assert sha256_of(dest / "latest.pt") == sha256_of(step)
