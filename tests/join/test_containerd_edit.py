"""containerd's config edited in place: which file decides, and only the lines that must change.

The inputs are real: Debian's containerd 1.6.20 `config default` and the config.toml its
package ships, and containerd 2.1.5's `config default` (tests/fixtures/containerd). No
containerd runs here (the PATH is empty, so a version 2 file is merged as 1.x merges it);
tests/join/test_containerd_join.py runs the real one.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any

import pytest

from worldland_cli.host import Host
from worldland_cli.join.actions import Manual, RestartUnit, RunCommand, WriteFile
from worldland_cli.requirements.base import JoinSettings, Requirement, Status
from worldland_cli.requirements.containerd import NvidiaRuntime, SystemdCgroup
from worldland_cli.requirements.containerd_config import CRI_V2, CRI_V3
from worldland_cli.requirements.containerd_edit import EditError, apply_patch
from worldland_cli.requirements.containerd_plan import NVIDIA_BINARY, load

FIXTURES = Path(__file__).parents[1] / "fixtures" / "containerd"
DEBIAN_DEFAULT = (FIXTURES / "debian-1.6.20-config-default.toml").read_text()
DEBIAN_ETC = (FIXTURES / "debian-1.6.20-etc-config.toml").read_text()
V3_DEFAULT = (FIXTURES / "containerd-2.1.5-config-default.toml").read_text()
MAIN = "/etc/containerd/config.toml"
CONF_D = "/etc/containerd/conf.d"
SETTINGS = JoinSettings()

# A hand-kept version 2 file: comments everywhere, no indentation, keys out of dump order.
HAND_KEPT = """\
# containerd on gpu-node-1 -- kept by ops, see the runbook
version = 2

[plugins."io.containerd.grpc.v1.cri"]
# our mirror of the pause image
sandbox_image = "registry.internal/pause:3.9"   # pinned

[plugins."io.containerd.grpc.v1.cri".containerd]
snapshotter = "overlayfs"
default_runtime_name = "runc"   # runc until the GPUs arrive

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
runtime_type = "io.containerd.runc.v2"
# options follow
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
SystemdCgroup = false    # ops: flip me
BinaryName = ""
"""


def root_with(tmp_path: Path, files: dict[str, str], toolkit: bool = True) -> Host:
    root = tmp_path / "root"
    for path, text in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    if toolkit:
        (root / NVIDIA_BINARY.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / NVIDIA_BINARY.lstrip("/")).write_text("#!/bin/sh\n")
    empty = tmp_path / "no-tools"
    empty.mkdir(exist_ok=True)
    return Host(root, search_path=str(empty))


def changed(old: str, new: str) -> tuple[list[str], list[str]]:
    """The lines a unified diff removes and adds (stripped), in order."""
    removed, added = [], []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), n=0, lineterm=""):
        if line.startswith("-") and not line.startswith("---"):
            removed.append(line[1:].strip())
        elif line.startswith("+") and not line.startswith("+++"):
            added.append(line[1:].strip())
    return removed, added


def run_plan(host: Host, requirement: Requirement) -> dict[str, str]:
    """Plan ``requirement`` and write what it would write; path -> new text."""
    finding = requirement.check(host)
    assert finding.status is Status.FAIL, finding.observed
    actions = requirement.plan(host, finding, SETTINGS)
    assert isinstance(actions[-1], RestartUnit), actions
    writes = {a.path: a.content for a in actions if isinstance(a, WriteFile)}
    assert all(isinstance(a, WriteFile | RestartUnit) for a in actions), actions
    for path, text in writes.items():
        host.write_atomic(path, text)
    return writes


def cri(text: str, plugin: str = CRI_V2) -> dict[str, Any]:
    section: dict[str, Any] = tomllib.loads(text)["plugins"][plugin]["containerd"]
    return section


def test_debian_default_gets_an_nvidia_runtime_like_nvidia_ctk_writes(tmp_path: Path) -> None:
    host = root_with(tmp_path, {MAIN: DEBIAN_DEFAULT})
    writes = run_plan(host, NvidiaRuntime())
    assert list(writes) == [MAIN]
    removed, added = changed(DEBIAN_DEFAULT, writes[MAIN])
    assert removed == ['default_runtime_name = "runc"']
    assert added[0] == 'default_runtime_name = "nvidia"'
    # The new table sits after runc's, with blank lines around it as between the others.
    assert (
        '\n            SystemdCgroup = false\n\n        [plugins."io.containerd.grpc.v1.cri"'
        ".containerd.runtimes.nvidia]\n          base_runtime_spec"
    ) in writes[MAIN]
    assert (
        '\n            SystemdCgroup = false\n\n      [plugins."io.containerd.grpc.v1.cri"'
        ".containerd.untrusted_workload_runtime]"
    ) in writes[MAIN]
    assert '\n            BinaryName = "/usr/bin/nvidia-container-runtime"\n' in writes[MAIN]
    section = cri(writes[MAIN])
    runc, nvidia = section["runtimes"]["runc"], section["runtimes"]["nvidia"]
    # runc's table copied (SystemdCgroup included), BinaryName pointed at the nvidia runtime.
    assert nvidia == {**runc, "options": {**runc["options"], "BinaryName": NVIDIA_BINARY}}
    assert nvidia["runtime_type"] == "io.containerd.runc.v2"
    assert NvidiaRuntime().check(host).status is Status.OK


def test_systemd_cgroup_changes_only_the_two_option_lines(tmp_path: Path) -> None:
    host = root_with(tmp_path, {MAIN: DEBIAN_DEFAULT})
    with_nvidia = run_plan(host, NvidiaRuntime())[MAIN]
    done = run_plan(host, SystemdCgroup())[MAIN]
    removed, added = changed(with_nvidia, done)
    assert removed == ["SystemdCgroup = false", "SystemdCgroup = false"]
    assert added == ["SystemdCgroup = true", "SystemdCgroup = true"]
    runtimes = cri(done)["runtimes"]
    assert runtimes["nvidia"]["options"]["SystemdCgroup"] is True
    assert runtimes["runc"]["options"]["SystemdCgroup"] is True
    assert SystemdCgroup().check(host).status is Status.OK


def test_a_hand_kept_file_keeps_every_comment_and_its_order(tmp_path: Path) -> None:
    host = root_with(tmp_path, {MAIN: HAND_KEPT})
    run_plan(host, NvidiaRuntime())
    done = run_plan(host, SystemdCgroup())[MAIN]
    removed, added = changed(HAND_KEPT, done)
    assert removed == [
        'default_runtime_name = "runc"   # runc until the GPUs arrive',
        "SystemdCgroup = false    # ops: flip me",
    ]
    # The edited lines keep their comments; the nvidia table follows the file's flat layout.
    assert added[:2] == [
        'default_runtime_name = "nvidia"   # runc until the GPUs arrive',
        "SystemdCgroup = true    # ops: flip me",
    ]
    assert added[2:] == [
        "",
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]',
        'runtime_type = "io.containerd.runc.v2"',
        "",
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]',
        "SystemdCgroup = true",
        f'BinaryName = "{NVIDIA_BINARY}"',
    ]
    assert cri(done)["default_runtime_name"] == "nvidia"


def test_debian_shipped_config_gets_runc_defined_in_place(tmp_path: Path) -> None:
    """Debian's own config.toml names the CRI plugin but no runtimes: runc is built in."""
    host = root_with(tmp_path, {MAIN: DEBIAN_ETC}, toolkit=False)
    done = run_plan(host, SystemdCgroup())[MAIN]
    # Two tables added at the end of the CRI section, in the file's compact layout.
    assert changed(DEBIAN_ETC, done) == ([], [
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
        'runtime_type = "io.containerd.runc.v2"',
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
        "SystemdCgroup = true",
    ])  # fmt: skip
    assert '"/etc/cni/net.d"\n        [plugins."io.containerd.grpc.v1.cri".containerd.' in done
    assert cri(done)["runtimes"] == {
        "runc": {"runtime_type": "io.containerd.runc.v2", "options": {"SystemdCgroup": True}}
    }
    assert SystemdCgroup().check(host).status is Status.OK


def test_version_3_keeps_single_quotes_and_edits_the_main_file(tmp_path: Path) -> None:
    host = root_with(tmp_path, {MAIN: V3_DEFAULT})
    first = run_plan(host, NvidiaRuntime())[MAIN]
    removed, added = changed(V3_DEFAULT, first)
    assert removed == ["default_runtime_name = 'runc'"]
    assert added[0] == "default_runtime_name = 'nvidia'"
    assert (
        "\n            SystemdCgroup = false\n\n        [plugins.'io.containerd.cri.v1.runtime'"
        ".containerd.runtimes.nvidia]\n          runtime_type = 'io.containerd.runc.v2'\n"
    ) in first
    done = run_plan(host, SystemdCgroup())[MAIN]
    assert changed(first, done) == (["SystemdCgroup = false"] * 2, ["SystemdCgroup = true"] * 2)
    assert cri(done, CRI_V3)["runtimes"]["nvidia"]["options"]["BinaryName"] == NVIDIA_BINARY
    assert "sandboxer = 'podsandbox'" in done.split("runtimes.nvidia]")[1]


# What nvidia-ctk 1.18 writes for containerd 2.x: the main file's whole CRI runtime section
# (containerd 1.x would drop what it left out), the nvidia runtime and the default.
V3_CTK_DROP_IN = """\
version = 3

[plugins]

  [plugins."io.containerd.cri.v1.runtime"]
    enable_cdi = true

    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = "nvidia"

      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes]

        [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.nvidia]
          runtime_type = "io.containerd.runc.v2"

          [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.nvidia.options]
            BinaryName = "/usr/bin/nvidia-container-runtime"
            SystemdCgroup = false

        [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
          runtime_type = "io.containerd.runc.v2"

          [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
            SystemdCgroup = false
"""
V3_WITH_CONF_D = V3_DEFAULT.replace("imports = []", "imports = ['/etc/containerd/conf.d/*.toml']")


def test_version_3_with_a_conf_d_drop_in_edits_the_drop_in_that_sets_the_key(
    tmp_path: Path,
) -> None:
    files = {MAIN: V3_WITH_CONF_D, f"{CONF_D}/99-nvidia.toml": V3_CTK_DROP_IN}
    host = root_with(tmp_path, files)
    assert NvidiaRuntime().check(host).status is Status.OK
    writes = run_plan(host, SystemdCgroup())
    assert list(writes) == [f"{CONF_D}/99-nvidia.toml"]  # it set both keys last
    assert (tmp_path / "root" / MAIN.lstrip("/")).read_text() == V3_WITH_CONF_D
    assert changed(V3_CTK_DROP_IN, writes[f"{CONF_D}/99-nvidia.toml"]) == (
        ["SystemdCgroup = false"] * 2,
        ["SystemdCgroup = true"] * 2,
    )
    assert SystemdCgroup().check(host).status is Status.OK


def test_version_3_each_change_goes_where_containerd_2_takes_it_from(tmp_path: Path) -> None:
    """A drop-in sets the default back to runc and adds kata: the default is changed in that
    drop-in (it wins), the new nvidia table goes next to runc in the main file."""
    local = (
        "version = 3\n# local overrides\n"
        "[plugins.'io.containerd.cri.v1.runtime'.containerd]\n"
        "  default_runtime_name = 'runc'\n"
        "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.kata]\n"
        "  runtime_type = 'io.containerd.kata.v2'\n"
    )
    host = root_with(tmp_path, {MAIN: V3_WITH_CONF_D, f"{CONF_D}/50-local.toml": local})
    writes = run_plan(host, NvidiaRuntime())
    assert sorted(writes) == [f"{CONF_D}/50-local.toml", MAIN]
    assert changed(local, writes[f"{CONF_D}/50-local.toml"]) == (
        ["default_runtime_name = 'runc'"],
        ["default_runtime_name = 'nvidia'"],
    )
    assert "runtimes.nvidia]" in writes[MAIN] and "default_runtime_name = 'runc'" in writes[MAIN]
    cfg = load(host)
    assert cfg.default_runtime_name() == "nvidia"
    assert set(cfg.runtimes()) == {"kata", "nvidia", "runc"}


def test_version_2_cri_section_in_a_drop_in_is_edited_there(tmp_path: Path) -> None:
    """containerd 1.x takes the whole CRI section from the last file naming it: editing the
    main file would change nothing."""
    main = DEBIAN_DEFAULT.replace("imports = []", 'imports = ["/etc/containerd/conf.d/*.toml"]')
    drop_in = (
        f'version = 2\n\n# CRI settings live here\n[plugins."{CRI_V2}".containerd]\n'
        f'  default_runtime_name = "runc"\n[plugins."{CRI_V2}".containerd.runtimes.runc]\n'
        f'  runtime_type = "io.containerd.runc.v2"\n'
        f'[plugins."{CRI_V2}".containerd.runtimes.runc.options]\n  SystemdCgroup = false\n'
    )
    host = root_with(tmp_path, {MAIN: main, f"{CONF_D}/50-cri.toml": drop_in})
    assert list(run_plan(host, NvidiaRuntime())) == [f"{CONF_D}/50-cri.toml"]
    assert list(run_plan(host, SystemdCgroup())) == [f"{CONF_D}/50-cri.toml"]
    assert (tmp_path / "root" / MAIN.lstrip("/")).read_text() == main
    cfg = load(host)
    assert cfg.default_runtime_name() == "nvidia"
    assert cfg.runtimes()["nvidia"]["options"] == {
        "SystemdCgroup": True,
        "BinaryName": NVIDIA_BINARY,
    }


def test_already_right_configs_plan_nothing(tmp_path: Path) -> None:
    host = root_with(tmp_path, {MAIN: DEBIAN_DEFAULT})
    run_plan(host, NvidiaRuntime())
    run_plan(host, SystemdCgroup())
    assert NvidiaRuntime().check(host).status is Status.OK
    assert SystemdCgroup().check(host).status is Status.OK
    done = (tmp_path / "root" / MAIN.lstrip("/")).read_text()
    assert (
        apply_patch(done, {"plugins": {CRI_V2: {"containerd": {"default_runtime_name": "nvidia"}}}})
        == done
    )


def test_without_the_toolkit_the_step_needs_a_person(tmp_path: Path) -> None:
    host = root_with(tmp_path, {MAIN: DEBIAN_DEFAULT}, toolkit=False)
    finding = NvidiaRuntime().check(host)
    actions = NvidiaRuntime().plan(host, finding, SETTINGS)
    assert len(actions) == 1 and isinstance(actions[0], Manual)
    assert "nvidia-container-toolkit" in actions[0].instruction


def test_a_layout_the_editor_cannot_keep_is_refused_not_mangled(tmp_path: Path) -> None:
    inline = (
        f'version = 2\n[plugins."{CRI_V2}".containerd]\n'
        'runtimes = { runc = { runtime_type = "io.containerd.runc.v2" } }\n'
    )
    with pytest.raises(EditError, match="is a value, not a table"):
        apply_patch(
            inline, {"plugins": {CRI_V2: {"containerd": {"runtimes": {"nvidia": {"a": 1}}}}}}
        )
    host = root_with(tmp_path, {MAIN: inline})
    actions = NvidiaRuntime().plan(host, NvidiaRuntime().check(host), SETTINGS)
    assert len(actions) == 1 and isinstance(actions[0], Manual)
    assert MAIN in actions[0].instruction and "by hand" in actions[0].instruction


def test_nvidia_ctk_is_used_only_where_the_main_file_decides(tmp_path: Path) -> None:
    main = DEBIAN_DEFAULT.replace("imports = []", 'imports = ["/etc/containerd/conf.d/*.toml"]')
    host = root_with(tmp_path, {MAIN: main})
    tools = tmp_path / "no-tools"
    (tools / "nvidia-ctk").write_text("#!/bin/sh\nexit 0\n")
    (tools / "nvidia-ctk").chmod(0o755)
    actions = NvidiaRuntime().plan(host, NvidiaRuntime().check(host), SETTINGS)
    assert isinstance(actions[0], RunCommand)
    assert actions[0].argv[-2:] == ("--config", MAIN)
    assert actions[0].files == (MAIN, f"{CONF_D}/99-nvidia.toml")
    drop_in = f'version = 2\n[plugins."{CRI_V2}".containerd]\n  default_runtime_name = "runc"\n'
    (tmp_path / "root" / CONF_D.lstrip("/")).mkdir(parents=True)
    (tmp_path / "root" / CONF_D.lstrip("/") / "50-cri.toml").write_text(drop_in)
    actions = NvidiaRuntime().plan(host, NvidiaRuntime().check(host), SETTINGS)
    assert [type(a) for a in actions] == [WriteFile, RestartUnit]
    assert isinstance(actions[0], WriteFile) and actions[0].path == f"{CONF_D}/50-cri.toml"
