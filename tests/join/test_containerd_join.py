"""join's containerd config steps on the fake root, and what a real containerd makes of them.

containerd installed by the fake apt-get is Debian's real binary (1.6, config version 2):
it writes the default config and validates every candidate. containerd 2.x cannot run
here, so version 3 runs on the ``containerd.io`` fake of tests.support.fakes_containerd;
nvidia-ctk is that module's ``runtime configure`` fake (1.17 rewrites the file, 1.18 writes
a conf.d drop-in).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.join.conftest import FakeHost, snapshot
from tests.join.test_containerd_edit import HAND_KEPT, V3_DEFAULT, changed
from tests.support import fakesystem
from tests.support.fakes_containerd import gotoml_v1, install_toolkit
from worldland_cli.join.actions import Output, RunCommand, WriteFile
from worldland_cli.join.journal import Journal
from worldland_cli.join.plan import plan_join
from worldland_cli.join.run import JoinFailed, join_host, reset_host
from worldland_cli.main import app
from worldland_cli.requirements.base import JoinSettings, Requirement, Status
from worldland_cli.requirements.containerd import Installed, NvidiaRuntime, Running, SystemdCgroup
from worldland_cli.requirements.containerd_config import CRI_V2, CRI_V3
from worldland_cli.requirements.containerd_plan import NVIDIA_BINARY, load

CONTAINERD = "/usr/bin/containerd"
MAIN = "/etc/containerd/config.toml"
DROP_IN = "/etc/containerd/conf.d/99-nvidia.toml"
SETTINGS = JoinSettings()
CONFIG_STEPS = ["containerd.nvidia-runtime", "containerd.systemd-cgroup"]

pytestmark = pytest.mark.skipif(
    not os.access(CONTAINERD, os.X_OK), reason="Debian's containerd is not installed"
)


def steps() -> list[Requirement]:
    return [Installed(), Running(), NvidiaRuntime(), SystemdCgroup()]


def met(fake: FakeHost) -> bool:
    return all(r.check(fake.host).status is Status.OK for r in steps())


def sh(fake: FakeHost, *argv: str) -> None:
    """Prepare the host as a person would have, through the same fake tools."""
    result = fake.host.run(argv, timeout=60)
    assert result.ok, result.describe_failure()


def containerd_running(fake: FakeHost, package: str = "containerd") -> None:
    sh(fake, "apt-get", "install", "-y", package)
    sh(fake, "systemctl", "enable", "--now", "containerd")


def toolkit_without_ctk(fake: FakeHost) -> None:
    """The runtime binary without nvidia-ctk (the GPU operator's layout, an old toolkit)."""
    target = fake.root / NVIDIA_BINARY.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("#!/bin/sh\n")


def write(fake: FakeHost, path: str, text: str, mode: int = 0o644) -> Path:
    target = fake.root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)
    return target


def cri(fake: FakeHost, path: str = MAIN, plugin: str = CRI_V2) -> dict[str, Any]:
    data = tomllib.loads((fake.root / path.lstrip("/")).read_text())
    section: dict[str, Any] = data["plugins"][plugin]["containerd"]
    return section


def default_config() -> str:
    return subprocess.run(
        [CONTAINERD, "config", "default"], capture_output=True, text=True, check=True
    ).stdout


def test_the_go_toml_fake_writes_what_containerd_1_6_writes() -> None:
    """nvidia-ctk and containerd 1.6 share go-toml v1: the fake's serialiser is checked
    against containerd's own `config default`, byte for byte."""
    text = default_config()
    assert gotoml_v1(tomllib.loads(text)) == text


def test_join_on_a_fresh_host_writes_the_default_config_and_meets_both(fake: FakeHost) -> None:
    toolkit_without_ctk(fake)
    before = snapshot(fake.root)
    result = join_host(fake.host, fake.journal, steps(), SETTINGS)
    assert result.done == ["containerd.installed", "containerd.running", *CONFIG_STEPS]
    assert met(fake)
    text = (fake.root / MAIN.lstrip("/")).read_text()
    removed, _added = changed(default_config(), text)
    assert removed == ['default_runtime_name = "runc"', "SystemdCgroup = false"]
    section = cri(fake)
    assert section["default_runtime_name"] == "nvidia"
    assert section["runtimes"]["nvidia"]["options"]["SystemdCgroup"] is True
    assert section["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    assert fake.calls().count("systemctl restart containerd") == 2
    assert plan_join(fake.host, steps(), SETTINGS).empty
    again = join_host(fake.host, fake.journal, steps(), SETTINGS)
    assert again.done == [] and again.met == [r.id for r in steps()]
    assert reset_host(fake.host, fake.journal, purge=True).failures == []
    assert snapshot(fake.root) == before


def test_the_plan_shows_both_edits_as_diffs_that_compose(fake: FakeHost) -> None:
    containerd_running(fake)
    toolkit_without_ctk(fake)
    write(fake, MAIN, HAND_KEPT)
    before = snapshot(fake.root)
    plan = plan_join(fake.host, steps(), SETTINGS)
    assert [s.id for s in plan.steps] == CONFIG_STEPS
    first, second = plan.steps
    assert [a.describe() for a in first.actions] == [f"write {MAIN}", "restart containerd"]
    assert '-default_runtime_name = "runc"   # runc until the GPUs arrive' in first.diffs[0]
    assert '+[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]' in first.diffs[0]
    # The second step is planned against the first one's result: only SystemdCgroup lines.
    lines = [ln for ln in second.diffs[0].splitlines() if ln[:1] in "+-" and ln[:3] not in "+++---"]
    assert lines == [
        "-SystemdCgroup = false    # ops: flip me",
        "+SystemdCgroup = true    # ops: flip me",
        "-SystemdCgroup = false",
        "+SystemdCgroup = true",
    ]
    write_step = second.actions[0]
    assert isinstance(write_step, WriteFile)
    assert write_step.validate == ("containerd", "--config", "%s", "config", "dump")
    assert snapshot(fake.root) == before


def test_a_hand_kept_config_keeps_its_comments_and_reset_restores_it(fake: FakeHost) -> None:
    containerd_running(fake)
    toolkit_without_ctk(fake)
    main = write(fake, MAIN, HAND_KEPT, 0o640)
    os.chown(main, 0, 4)
    before = snapshot(fake.root)
    calls = len(fake.calls())
    assert join_host(fake.host, fake.journal, steps(), SETTINGS).done == CONFIG_STEPS
    text = main.read_text()
    for line in HAND_KEPT.splitlines():
        if "#" in line:
            assert line.split("#", 1)[1] in text, line
    assert main.stat().st_mode & 0o777 == 0o640
    assert met(fake)
    assert fake.calls()[calls:].count("systemctl restart containerd") == 2
    calls = len(fake.calls())
    assert reset_host(fake.host, fake.journal).failures == []
    assert snapshot(fake.root) == before and main.read_text() == HAND_KEPT
    # containerd was running: it is restarted on the restored file (once per join restart).
    reset = ["systemctl is-active containerd", "systemctl restart containerd"]
    assert fake.calls()[calls:] == reset * 2


def die_at_line(line: int, *, written: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process 'dies' at the journal's ``line``-th line: after it is written, or while
    writing it (the action before it done, but the journal never told)."""
    real = Journal._append
    count = 0

    def append(self: Journal, doc: dict[str, object]) -> None:
        nonlocal count
        count += 1
        if count == line and not written:
            raise KeyboardInterrupt
        real(self, doc)
        if count == line:
            raise KeyboardInterrupt

    monkeypatch.setattr(Journal, "_append", append)


@pytest.mark.parametrize("done_recorded", [True, False], ids=["write done", "write not recorded"])
def test_a_join_cut_short_between_the_config_write_and_the_restart_restarts_containerd(
    fake: FakeHost, monkeypatch: pytest.MonkeyPatch, done_recorded: bool
) -> None:
    """The config steps' checks read the file, so after a join that died between writing it
    and `systemctl restart containerd` they pass while containerd still runs the old config.
    The journal shows the step begun and not finished: the next join finishes it."""
    containerd_running(fake)
    toolkit_without_ctk(fake)
    write(fake, MAIN, HAND_KEPT)
    before = snapshot(fake.root)
    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        die_at_line(2, written=done_recorded, monkeypatch=patched)  # the write's "done"
        join_host(fake.host, fake.journal, steps(), SETTINGS)
    assert cri(fake)["default_runtime_name"] == "nvidia"  # written ...
    assert NvidiaRuntime().check(fake.host).status is Status.OK  # ... so the check passes
    assert "systemctl restart containerd" not in fake.calls()  # ... but not restarted

    monkeypatch.setattr("worldland_cli.requirements.all_requirements", lambda **_: steps())
    root = str(fake.root)
    dry = CliRunner().invoke(app, ["join", "--dry-run", "--root", root, "--json"])
    first = json.loads(dry.stdout)["plan"]["steps"][0]
    assert first["id"] == "containerd.nvidia-runtime"
    assert [a["describe"] for a in first["actions"]][-1] == "restart containerd"
    calls = len(fake.calls())
    rerun = CliRunner().invoke(app, ["join", "--root", root, "--yes"])
    assert rerun.exit_code == 0, rerun.output
    assert fake.calls()[calls:].count("systemctl restart containerd") == 2  # both steps'
    ran = [(e.action.kind, e.state) for e in Journal(fake.host).entries()
           if e.step == "containerd.nvidia-runtime"]  # fmt: skip
    assert ran[-2:] == [("write-file", "done"), ("restart-unit", "done")]
    assert met(fake)
    assert (
        CliRunner()
        .invoke(app, ["join", "--root", root, "--yes"])
        .stdout.startswith("Nothing to do")
    )
    assert reset_host(fake.host, fake.journal).failures == []
    assert snapshot(fake.root) == before


@pytest.mark.parametrize("events", range(1, 9))
def test_a_join_cut_short_in_the_config_steps_ends_the_same(
    fake: FakeHost, monkeypatch: pytest.MonkeyPatch, events: int
) -> None:
    from tests.join.test_core import crash_after

    containerd_running(fake)
    toolkit_without_ctk(fake)
    write(fake, MAIN, HAND_KEPT)
    before = snapshot(fake.root)
    crash_after(events, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        join_host(fake.host, fake.journal, steps(), SETTINGS)
    monkeypatch.undo()
    join_host(fake.host, fake.journal, steps(), SETTINGS)
    assert met(fake)
    assert cri(fake)["runtimes"]["nvidia"]["options"]["SystemdCgroup"] is True
    assert reset_host(fake.host, fake.journal).failures == []
    assert snapshot(fake.root) == before


def test_with_nvidia_ctk_1_17_join_runs_it_on_the_main_file(fake: FakeHost) -> None:
    containerd_running(fake)
    install_toolkit(fake.root, fake.fakes, "1.17.8-1")
    before = snapshot(fake.root)
    assert join_host(fake.host, fake.journal, steps(), SETTINGS).done == CONFIG_STEPS
    ctk = "runtime configure --runtime=containerd --set-as-default --config " + MAIN
    assert f"nvidia-ctk {ctk}" in fake.calls()
    assert not (fake.root / DROP_IN.lstrip("/")).exists()
    section = cri(fake)
    assert section["default_runtime_name"] == "nvidia"
    assert section["runtimes"]["nvidia"]["options"]["BinaryName"] == NVIDIA_BINARY
    assert section["runtimes"]["nvidia"]["options"]["SystemdCgroup"] is True
    assert met(fake)
    assert reset_host(fake.host, fake.journal).failures == []
    assert snapshot(fake.root) == before


def test_with_nvidia_ctk_1_18_the_systemd_cgroup_edit_lands_in_its_drop_in(
    fake: FakeHost,
) -> None:
    """nvidia-ctk 1.18 moves the CRI section into conf.d/99-nvidia.toml; containerd 1.x then
    takes the whole section from there, so that is the file SystemdCgroup must change."""
    containerd_running(fake)
    install_toolkit(fake.root, fake.fakes, "1.18.0-1")
    before = snapshot(fake.root)
    assert join_host(fake.host, fake.journal, steps(), SETTINGS).done == CONFIG_STEPS
    main = tomllib.loads((fake.root / MAIN.lstrip("/")).read_text())
    assert main["imports"] == ["/etc/containerd/conf.d/*.toml"]
    assert main["plugins"][CRI_V2]["containerd"]["default_runtime_name"] == "runc"
    section = cri(fake, DROP_IN)
    assert section["default_runtime_name"] == "nvidia"
    assert section["runtimes"]["nvidia"]["options"]["SystemdCgroup"] is True
    assert load(fake.host).files == [MAIN, DROP_IN]
    assert met(fake)
    assert reset_host(fake.host, fake.journal).failures == []
    assert snapshot(fake.root) == before
    assert not (fake.root / "etc/containerd/conf.d").exists()


def test_version_3_with_nvidia_ctk_is_equally_right(fake: FakeHost) -> None:
    containerd_running(fake, "containerd.io")
    install_toolkit(fake.root, fake.fakes, "1.18.0-1")
    write(fake, MAIN, V3_DEFAULT)
    before = snapshot(fake.root)
    assert join_host(fake.host, fake.journal, steps(), SETTINGS).done == CONFIG_STEPS
    cfg = load(fake.host)
    assert cfg.deep_merge and cfg.files == [MAIN, DROP_IN]
    assert cfg.default_runtime_name() == "nvidia"
    assert cfg.runtimes()["nvidia"]["options"]["SystemdCgroup"] is True
    assert cri(fake, DROP_IN, CRI_V3)["runtimes"]["nvidia"]["options"]["SystemdCgroup"] is True
    assert met(fake)
    assert reset_host(fake.host, fake.journal).failures == []
    assert snapshot(fake.root) == before


def test_version_3_without_nvidia_ctk_edits_the_main_file_next_to_its_drop_in(
    fake: FakeHost,
) -> None:
    containerd_running(fake, "containerd.io")
    toolkit_without_ctk(fake)
    main_text = V3_DEFAULT.replace("imports = []", "imports = ['/etc/containerd/conf.d/*.toml']")
    write(fake, MAIN, main_text)
    kata = (
        "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.kata]\n"
        "  runtime_type = 'io.containerd.kata.v2'\n"
    )
    write(fake, "/etc/containerd/conf.d/50-kata.toml", kata)
    before = snapshot(fake.root)
    assert join_host(fake.host, fake.journal, steps(), SETTINGS).done == CONFIG_STEPS
    assert (fake.root / "etc/containerd/conf.d/50-kata.toml").read_text() == kata
    section = cri(fake, MAIN, CRI_V3)
    assert section["default_runtime_name"] == "nvidia"
    assert section["runtimes"]["nvidia"]["options"]["SystemdCgroup"] is True
    assert met(fake)
    assert reset_host(fake.host, fake.journal).failures == []
    assert snapshot(fake.root) == before


def test_a_main_config_that_is_not_toml_stops_join_and_changes_nothing(fake: FakeHost) -> None:
    containerd_running(fake)
    toolkit_without_ctk(fake)
    write(fake, MAIN, HAND_KEPT.replace('[plugins."io.containerd.grpc.v1.cri"]\n', "[plugins\n"))
    before = snapshot(fake.root)
    with pytest.raises(JoinFailed) as failed:
        join_host(fake.host, fake.journal, steps(), SETTINGS)
    message, hint = failed.value.message, failed.value.hint or ""
    assert message.startswith("containerd.nvidia-runtime: this step needs a person: ")
    assert f"{MAIN}: invalid TOML" in message and "config dump" in message
    log = re.search(r"printed is in (\S+);", hint)
    assert log is not None and "invalid TOML" in Path(log.group(1)).read_text()
    assert snapshot(fake.root) == before
    assert reset_host(fake.host, fake.journal).failures == []
    assert snapshot(fake.root) == before


def test_a_candidate_containerd_refuses_never_takes_the_files_name(fake: FakeHost) -> None:
    """tomllib reads `oom_score = "high"`, containerd does not: the edit is validated by
    containerd itself, so join stops with its words and the file is untouched."""
    containerd_running(fake)
    toolkit_without_ctk(fake)
    refused = 'oom_score = "high"\n' + HAND_KEPT.split("\n", 1)[1]
    main = write(fake, MAIN, refused)
    before = snapshot(fake.root)
    with pytest.raises(JoinFailed) as failed:
        join_host(fake.host, fake.journal, steps(), SETTINGS)
    assert failed.value.message.startswith("containerd.nvidia-runtime: `containerd --config ")
    assert "Can't convert high(string) to int" in failed.value.message
    assert "logs/" in (failed.value.hint or "")
    assert main.read_text() == refused
    assert snapshot(fake.root) == before  # the candidate is gone too
    assert reset_host(fake.host, fake.journal).failures == []


def test_a_write_planned_against_an_older_file_is_refused(fake: FakeHost) -> None:
    containerd_running(fake)
    toolkit_without_ctk(fake)
    write(fake, MAIN, HAND_KEPT)
    action = NvidiaRuntime().plan(fake.host, NvidiaRuntime().check(fake.host), SETTINGS)[0]
    assert isinstance(action, WriteFile) and not isinstance(action, RunCommand)
    write(fake, MAIN, HAND_KEPT + "# edited meanwhile\n")
    from worldland_cli.join.actions import ActionFailed

    with pytest.raises(ActionFailed, match="changed since the plan"):
        action.apply(fake.host, Output(fake.host, None))


# ------------------------------------------------------- the real containerd loads the result


@pytest.fixture
def real_containerd(tmp_path: Path) -> Iterator[Any]:
    """Start Debian's containerd on a config with its own root, state and socket under tmp."""
    if os.geteuid() != 0:
        pytest.skip("containerd needs root to start (it mounts and chowns its state)")
    started: list[subprocess.Popen[bytes]] = []
    opt_existed = os.path.exists("/opt/containerd")

    def start(config: Path) -> str:
        state = tmp_path / "state"
        socket = state / "containerd.sock"
        log = (tmp_path / "containerd.log").open("wb")
        proc = subprocess.Popen(
            [CONTAINERD, "--config", str(config), "--root", str(tmp_path / "lib"),
             "--state", str(state), "--address", str(socket), "--log-level", "info"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append(proc)
        deadline = time.monotonic() + 20
        while not socket.exists():
            assert proc.poll() is None, (tmp_path / "containerd.log").read_text()
            assert time.monotonic() < deadline, "containerd did not open its socket"
            time.sleep(0.1)
        return (tmp_path / "containerd.log").read_text()

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if not opt_existed:  # its opt plugin makes /opt/containerd/{bin,lib}
        shutil.rmtree("/opt/containerd", ignore_errors=True)


@pytest.mark.root
@pytest.mark.parametrize("with_comments", [False, True], ids=["default", "commented"])
def test_real_containerd_runs_the_config_join_wrote(
    fake: FakeHost, real_containerd: Any, tmp_path: Path, with_comments: bool
) -> None:
    containerd_running(fake)
    toolkit_without_ctk(fake)
    if with_comments:
        commented = (
            default_config()
            .replace("version = 2\n", "version = 2\n# kept by ops: do not clobber\n")
            .replace(
                '      snapshotter = "overlayfs"\n', '      snapshotter = "overlayfs"  # ssd\n'
            )
        )
        write(fake, MAIN, commented)
    assert join_host(fake.host, fake.journal, steps(), SETTINGS).done == CONFIG_STEPS
    config = fake.root / MAIN.lstrip("/")
    text = config.read_text()
    if with_comments:
        assert "# kept by ops: do not clobber\n" in text and "# ssd\n" in text
    dump = subprocess.run(
        [CONTAINERD, "--config", str(config), "config", "dump"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    theirs = tomllib.loads(dump.stdout)["plugins"][CRI_V2]["containerd"]
    assert theirs["default_runtime_name"] == "nvidia"
    assert theirs["runtimes"]["nvidia"]["options"]["BinaryName"] == NVIDIA_BINARY
    assert theirs["runtimes"]["nvidia"]["options"]["SystemdCgroup"] is True
    assert theirs["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    # The daemon itself, started on the file, logs the CRI config it runs with.
    log = real_containerd(config)
    started = re.search(r"Start cri plugin with config (.*)", log)
    assert started is not None, log
    assert "DefaultRuntimeName:nvidia " in started.group(1)
    nvidia = re.search(r"nvidia:\{Type:io\.containerd\.runc\.v2 .*?Options:map\[([^\]]*)\]", log)
    assert nvidia is not None, started.group(1)
    assert f"BinaryName:{NVIDIA_BINARY}" in nvidia.group(1)
    assert "SystemdCgroup:true" in nvidia.group(1)


def test_version_3_as_containerd_2_writes_it_with_a_drop_in(fake: FakeHost) -> None:
    """containerd 1.6 cannot load version 3: the project's own loader and tomllib judge."""
    containerd_running(fake, "containerd.io")
    toolkit_without_ctk(fake)
    write(fake, MAIN, V3_DEFAULT.replace("imports = []", "imports = ['conf.d/*.toml']"))
    drop_in = (
        "version = 3\n# GPU nodes: the runtime handlers\n"
        "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n"
        "  SystemdCgroup = false  # set by an old installer\n"
    )
    write(fake, "/etc/containerd/conf.d/10-gpu.toml", drop_in)
    assert join_host(fake.host, fake.journal, steps(), SETTINGS).done == CONFIG_STEPS
    files = {
        p: (fake.root / p.lstrip("/")).read_text()
        for p in (MAIN, "/etc/containerd/conf.d/10-gpu.toml")
    }
    assert changed(drop_in, files["/etc/containerd/conf.d/10-gpu.toml"]) == (
        ["SystemdCgroup = false  # set by an old installer"],
        ["SystemdCgroup = true  # set by an old installer"],
    )
    assert "# GPU nodes: the runtime handlers" in files["/etc/containerd/conf.d/10-gpu.toml"]
    for text in files.values():
        tomllib.loads(text)
    cfg = load(fake.host)
    assert cfg.version == 3 and cfg.deep_merge
    assert cfg.default_runtime_name() == "nvidia"
    runtimes = cfg.runtimes()
    assert runtimes["nvidia"]["runtime_type"] == "io.containerd.runc.v2"
    assert runtimes["nvidia"]["options"]["BinaryName"] == NVIDIA_BINARY
    assert runtimes["nvidia"]["options"]["SystemdCgroup"] is True
    assert runtimes["runc"]["options"]["SystemdCgroup"] is True
    assert fakesystem.calls(fake.fakes).count("systemctl restart containerd") == 2
