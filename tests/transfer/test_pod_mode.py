"""Pod targets and one-time codes end to end: the real hub, a real sshd registered as a pod,
renters who log in for real (eth-account wallets, SIWE), through the CLI.

The hub and the sshd are shared by the module (each costs about two seconds to start); every
test makes its own wallets, pods and directories, so tests do not see each other's state.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.support.hub import RunningHub, start_hub
from tests.support.sshd import SSH_KEYGEN, SshdServer, sshd_missing_reason, start_sshd
from tests.transfer.conftest import random_file, sha256_of
from worldland_cli.hubclient import HubClient, PodSsh
from worldland_cli.main import app
from worldland_cli.transfer.targets import (
    PodLocation,
    TargetError,
    parse_pod,
    parse_source,
    split_send_args,
)

CODE_LINE = re.compile(r"^Code is: (\S+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def pod_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    running = start_hub(tmp_path_factory.mktemp("hub"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def pod_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdServer]:
    reason = sshd_missing_reason()
    if reason:
        pytest.skip(reason)
    with start_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def renter(home: Path, hub: RunningHub, monkeypatch: pytest.MonkeyPatch) -> str:
    """Become a person with a fresh wallet in ``home`` who has logged in to ``hub``."""
    monkeypatch.setenv("WORLDLAND_HOME", str(home))
    made = cli("wallet", "new", "--json")
    assert made.exit_code == 0, made.output
    login = cli("login", "--hub", hub.url)
    assert login.exit_code == 0, login.output
    return str(json.loads(made.stdout)["address"])


def register_pod(
    hub: RunningHub, sshd: SshdServer, renter_address: str, host_key: str | None = None
) -> str:
    """The operator records the sshd as a pod rented by ``renter_address``."""
    pod_id = f"pod-{uuid.uuid4().hex[:10]}"
    pod = PodSsh(pod_id, sshd.host, sshd.port, sshd.user, host_key or sshd.host_public_key)
    with HubClient(hub.url) as client:
        assert client.admin_register_pod(hub.admin_token, pod, renter_address) == pod_id
    return pod_id


def other_host_key(directory: Path) -> str:
    key = directory / "impostor"
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    algo, blob = Path(f"{key}.pub").read_text().split()[:2]
    return f"{algo} {blob}"


def ssh_args(sshd: SshdServer) -> list[str]:
    return ["--identity", str(sshd.client_key)]


# ---------------------------------------------------------------- which argument is what


def test_send_arguments_pod_ssh_code_mode_and_local_paths(tmp_path: Path) -> None:
    local = tmp_path / "data"
    local.write_text("x")
    exists = {str(local)}.__contains__
    assert split_send_args(["a", "pod-1:/data"], exists) == (["a"], "pod-1:/data")
    assert split_send_args(["a", "b", "pod-1"], exists) == (["a", "b"], "pod-1")
    assert split_send_args(["a", "ssh://h:22/x"], exists) == (["a"], "ssh://h:22/x")
    assert split_send_args([str(local)], exists) == ([str(local)], None)
    with pytest.raises(TargetError, match="local path, not a TARGET"):
        split_send_args(["a", str(local)], exists)  # an existing path is never a pod
    with pytest.raises(TargetError, match="local path"):
        split_send_args(["a", "./b:c"], exists)  # a '/' before the ':' makes it a path
    with pytest.raises(TargetError, match="no PATH"):
        split_send_args(["pod-1:/data"], exists)
    assert parse_pod("pod-1", default_path="/workspace") == PodLocation("pod-1", "/workspace")
    assert parse_pod("pod-1:", default_path="/workspace") == PodLocation("pod-1", "/workspace")
    assert parse_pod("pod-1:ckpt", default_path=None) == PodLocation("pod-1", "/workspace/ckpt")


def test_receive_sources_code_pod_and_ssh() -> None:
    code = "4817-cactus-walrus-ember-quill-topaz"
    assert parse_source(code, "me") == code
    assert parse_source("pod-1:/w/m.pt", "me") == PodLocation("pod-1", "/w/m.pt")
    assert parse_source("ssh://u@h:2/x", "me").path == "/x"  # type: ignore[union-attr]
    with pytest.raises(TargetError, match="say which file"):
        parse_source("pod-1:", "me")
    with pytest.raises(TargetError, match="neither a code"):
        parse_source("8338-galileo", "me")  # a mistyped code is not taken for a pod
    with pytest.raises(TargetError, match="neither a code"):
        parse_source("8338-galileo-collect-fidel", "me")  # the old, short shape


# -------------------------------------------------------------------------- pod targets


def test_send_to_a_pod_and_receive_back_identical(
    pod_hub: RunningHub, pod_sshd: SshdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pod_id = register_pod(pod_hub, pod_sshd, renter(tmp_path / "home", pod_hub, monkeypatch))
    weights = random_file(tmp_path / "src" / "weights.bin", 3 * 1024 * 1024 + 7)
    nested = random_file(tmp_path / "src" / "cfg" / "deep" / "a.yaml", 100)
    remote = tmp_path / "pod-workspace"

    sent = cli(
        "send", str(weights), str(nested.parents[1]), f"{pod_id}:{remote}",
        "--hub", pod_hub.url, "--json", *ssh_args(pod_sshd),
    )  # fmt: skip
    assert sent.exit_code == 0, sent.output
    doc = json.loads(sent.stdout)
    assert doc["ok"] is True and doc["pod_id"] == pod_id
    assert doc["destination"] == pod_sshd.url(str(remote))
    assert sha256_of(remote / "weights.bin") == sha256_of(weights)
    assert sha256_of(remote / "cfg" / "deep" / "a.yaml") == sha256_of(nested)

    back = tmp_path / "back"
    got = cli(
        "receive", f"{pod_id}:{remote / 'weights.bin'}", str(back),
        "--hub", pod_hub.url, "--json", *ssh_args(pod_sshd),
    )  # fmt: skip
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout)["pod_id"] == pod_id
    assert sha256_of(back / "weights.bin") == sha256_of(weights)


def test_a_pod_whose_pinned_key_differs_is_refused_and_nothing_moves(
    pod_hub: RunningHub, pod_sshd: SshdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = renter(tmp_path / "home", pod_hub, monkeypatch)
    pod_id = register_pod(pod_hub, pod_sshd, address, other_host_key(tmp_path))
    src = random_file(tmp_path / "src.bin", 1000)
    remote = tmp_path / "remote"

    sent = cli("send", str(src), f"{pod_id}:{remote}", "--hub", pod_hub.url, *ssh_args(pod_sshd))
    assert sent.exit_code == 4, sent.output
    assert "not the key the hub pinned for this pod" in sent.output
    assert not remote.exists()

    back = tmp_path / "back"
    got = cli(
        "receive", f"{pod_id}:{src}", str(back), "--hub", pod_hub.url, "--json",
        *ssh_args(pod_sshd),
    )  # fmt: skip
    assert got.exit_code == 4
    assert "pinned" in json.loads(got.stdout)["error"]
    assert not back.exists() or list(back.iterdir()) == []


def test_another_wallet_cannot_resolve_the_pod(
    pod_hub: RunningHub, pod_sshd: SshdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pod_id = register_pod(pod_hub, pod_sshd, renter(tmp_path / "a", pod_hub, monkeypatch))
    stranger = renter(tmp_path / "b", pod_hub, monkeypatch)
    src = random_file(tmp_path / "src.bin", 10)

    got = cli("receive", f"{pod_id}:{src}", str(tmp_path / "back"), "--hub", pod_hub.url)
    assert got.exit_code == 1
    assert f"the hub knows no pod {pod_id} rented by {stranger}" in got.output
    assert "worldland whoami" in got.output

    sent = cli("send", str(src), f"{pod_id}:/tmp", "--hub", pod_hub.url, "--json")
    assert sent.exit_code == 1 and "knows no pod" in json.loads(sent.stdout)["error"]


def test_not_logged_in_says_run_login_and_exits_4(pod_hub: RunningHub, tmp_path: Path) -> None:
    src = random_file(tmp_path / "src.bin", 10)
    result = cli("send", str(src), "pod-x:/tmp", "--hub", pod_hub.url, "--json")
    assert result.exit_code == 4
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and "worldland login" in doc["hint"]


def test_an_unreachable_hub_exits_3_with_the_hubs_hint(tmp_path: Path) -> None:
    assert cli("wallet", "new").exit_code == 0  # a key file: the CLI tries to log in silently
    dead = "http://127.0.0.1:9"  # discard port: nothing listens there
    code = "4817-cactus-walrus-ember-quill-topaz"
    result = cli("receive", code, str(tmp_path), "--hub", dead, "--json")
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert dead in doc["error"] and "worldland diag network" in doc["hint"]


# -------------------------------------------------------------------------------- codes


def test_code_mode_end_to_end_then_the_spent_code_is_refused(
    pod_hub: RunningHub, pod_sshd: SshdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pod_id = register_pod(pod_hub, pod_sshd, renter(tmp_path / "sender", pod_hub, monkeypatch))
    src = random_file(tmp_path / "in-pod" / "checkpoint.pt", 2 * 1024 * 1024 + 3)
    monkeypatch.setenv("WORLDLAND_POD_ID", pod_id)  # what the pod's environment provides

    sent = cli("send", str(src), "--hub", pod_hub.url)
    assert sent.exit_code == 0, sent.output
    code = CODE_LINE.search(sent.stdout)
    assert code and re.fullmatch(r"[0-9]{4}(-[a-z]+){5}", code.group(1)), sent.stdout
    command = sent.stdout.strip().splitlines()[-1]
    assert command == f"worldland receive {code.group(1)} --hub {pod_hub.url}"
    assert sha256_of(src) in sent.stdout

    monkeypatch.delenv("WORLDLAND_POD_ID")
    renter(tmp_path / "receiver", pod_hub, monkeypatch)  # any wallet may claim a code
    dest = tmp_path / "dest"
    argv = shlex.split(command)[1:]  # exactly what the sender was told to run
    got = cli(*argv, str(dest), "--json", *ssh_args(pod_sshd))
    assert got.exit_code == 0, got.output
    doc = json.loads(got.stdout)
    assert doc["code"] == code.group(1) and doc["pod_id"] == pod_id
    assert doc["files"][0]["sha256"] == sha256_of(dest / "checkpoint.pt") == sha256_of(src)

    again = cli(*argv, str(tmp_path / "again"), *ssh_args(pod_sshd))
    assert again.exit_code == 1
    assert f"code {code.group(1)} was already used" in again.output
    assert not (tmp_path / "again").exists()


def test_code_mode_json_and_a_changed_file_fails_the_registered_sha256(
    pod_hub: RunningHub, pod_sshd: SshdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pod_id = register_pod(pod_hub, pod_sshd, renter(tmp_path / "sender", pod_hub, monkeypatch))
    src = random_file(tmp_path / "model.bin", 4096)
    sent = cli("send", str(src), "--pod", pod_id, "--hub", pod_hub.url, "--json")
    assert sent.exit_code == 0, sent.output
    doc = json.loads(sent.stdout)
    code = doc["code"]
    assert doc["size"] == 4096 and doc["sha256"] == sha256_of(src)
    assert doc["path"] == str(src) and doc["receive_command"].startswith(
        f"worldland receive {code}"
    )

    # The file changes after it was registered: same size, same far-side hash as what is
    # read, but not the bytes the sender announced.
    random_file(src, 4096)
    dest = tmp_path / "dest"
    got = cli("receive", code, str(dest), "--hub", pod_hub.url, *ssh_args(pod_sshd))
    assert got.exit_code == 1, got.output
    assert "checksum mismatch" in got.output and "is now used" in got.output
    assert not (dest / "model.bin").exists() and not (dest / "model.bin.part").exists()


def test_unknown_code_and_code_mode_usage(
    pod_hub: RunningHub, pod_sshd: SshdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pod_id = register_pod(pod_hub, pod_sshd, renter(tmp_path / "home", pod_hub, monkeypatch))
    never_made = "0000-acid-acid-acid-acid-acid"
    unknown = cli("receive", never_made, str(tmp_path), "--hub", pod_hub.url)
    assert unknown.exit_code == 1 and f"unknown code {never_made}" in unknown.output

    src = random_file(tmp_path / "f.bin", 10)
    no_pod = cli("send", str(src), "--hub", pod_hub.url)
    assert no_pod.exit_code == 2 and "WORLDLAND_POD_ID" in no_pod.output
    # Only the hub makes codes: there is no option to choose one.
    chosen = cli("send", str(src), "--pod", pod_id, "--code", "mine", "--hub", pod_hub.url)
    assert chosen.exit_code == 2 and "No such option" in chosen.output
    directory = cli("send", str(tmp_path), "--pod", pod_id, "--hub", pod_hub.url)
    assert directory.exit_code == 1 and "is a directory" in directory.output


def test_an_expired_code_says_so(
    pod_sshd: SshdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = start_hub(tmp_path / "hub", extra_args=["--transfer-ttl", "1s"])
    try:
        pod_id = register_pod(hub, pod_sshd, renter(tmp_path / "home", hub, monkeypatch))
        src = random_file(tmp_path / "f.bin", 10)
        sent = cli("send", str(src), "--pod", pod_id, "--hub", hub.url, "--json")
        assert sent.exit_code == 0, sent.output
        time.sleep(1.2)
        got = cli("receive", json.loads(sent.stdout)["code"], str(tmp_path / "d"), "--hub", hub.url)
        assert got.exit_code == 1 and "has expired" in got.output
    finally:
        hub.stop()


def test_a_code_moves_over_several_lanes_and_still_answers_to_the_registered_sha256(
    pod_hub: RunningHub, pod_sshd: SshdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pod_id = register_pod(pod_hub, pod_sshd, renter(tmp_path / "sender", pod_hub, monkeypatch))
    src = random_file(tmp_path / "ckpt.pt", 9 << 20)
    codes = []
    for _ in range(2):
        sent = cli("send", str(src), "--pod", pod_id, "--hub", pod_hub.url, "--json")
        assert sent.exit_code == 0, sent.output
        codes.append(json.loads(sent.stdout)["code"])

    dest = tmp_path / "dest"
    lanes = ["--lanes", "2", *ssh_args(pod_sshd)]
    got = cli("receive", codes[0], str(dest), "--hub", pod_hub.url, "--json", *lanes)
    assert got.exit_code == 0, got.output
    (result,) = json.loads(got.stdout)["files"]
    assert (result["lanes"], result["sha256"]) == (2, sha256_of(src))

    random_file(src, 9 << 20)  # changed after it was registered, the same size
    again = cli("receive", codes[1], str(tmp_path / "again"), "--hub", pod_hub.url, *lanes)
    assert again.exit_code == 1, again.output
    assert "checksum mismatch" in again.output
    assert not list((tmp_path / "again").glob("ckpt.pt*"))
