"""containerd checks against real containerd config files and containerd's own merge."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.doctor.hosts import (
    CONTAINERD,
    NVIDIA_BINARY,
    V3_MAIN,
    V3_NVIDIA_DROP_IN,
    containerd_default_config,
    nvidia_ctk_configure,
    set_systemd_cgroup,
    write,
)
from worldland_cli.host import Host
from worldland_cli.requirements.base import Status
from worldland_cli.requirements.containerd import NvidiaRuntime, SystemdCgroup
from worldland_cli.requirements.containerd_config import (
    CRI_V2,
    ContainerdConfigError,
    load_effective,
)

MAIN = "/etc/containerd/config.toml"


@pytest.fixture
def default_v2() -> str:
    text = containerd_default_config()
    if text is None:
        pytest.skip(f"{CONTAINERD} not installed (apt-get install containerd)")
    return text


def test_debian_default_config_fails_both_checks(host: Host, root: Path, default_v2: str) -> None:
    write(root, MAIN, default_v2)
    runtime = NvidiaRuntime().check(host)
    assert runtime.status is Status.FAIL
    assert "no nvidia runtime" in runtime.observed
    assert runtime.details["runtimes"] == ["runc"]
    assert "nvidia-ctk runtime configure --runtime=containerd --set-as-default" in (
        runtime.remedy or ""
    )
    cgroup = SystemdCgroup().check(host)
    assert cgroup.status is Status.FAIL
    assert "SystemdCgroup = false" in cgroup.observed
    assert f"'s/SystemdCgroup = false/SystemdCgroup = true/' {MAIN}" in (cgroup.remedy or "")


def test_seed_steps_on_default_config_pass(host: Host, root: Path, default_v2: str) -> None:
    write(root, MAIN, nvidia_ctk_configure(set_systemd_cgroup(default_v2)))
    write(root, NVIDIA_BINARY, "#!/bin/sh\n", 0o755)
    runtime = NvidiaRuntime().check(host)
    assert runtime.status is Status.OK, runtime.observed
    assert runtime.details["default_runtime_name"] == "nvidia"
    assert runtime.details["runtimes"] == ["nvidia", "runc"]
    assert SystemdCgroup().check(host).status is Status.OK


def test_nvidia_ctk_before_sed_leaves_nvidia_runtime_without_systemd_cgroup(
    host: Host, root: Path, default_v2: str
) -> None:
    """nvidia-ctk copies runc's options, so running it before the sed copies the false."""
    write(root, MAIN, nvidia_ctk_configure(default_v2))
    write(root, NVIDIA_BINARY, "#!/bin/sh\n", 0o755)
    assert NvidiaRuntime().check(host).status is Status.OK
    cgroup = SystemdCgroup().check(host)
    assert cgroup.status is Status.FAIL
    assert "'nvidia'" in cgroup.observed


def test_missing_nvidia_container_runtime_binary_fails(
    host: Host, root: Path, default_v2: str
) -> None:
    write(root, MAIN, nvidia_ctk_configure(set_systemd_cgroup(default_v2)))
    finding = NvidiaRuntime().check(host)
    assert finding.status is Status.FAIL
    assert NVIDIA_BINARY in finding.observed


def test_v3_config_with_nvidia_drop_in_passes(host: Host, root: Path) -> None:
    write(root, MAIN, V3_MAIN)
    write(root, "/etc/containerd/conf.d/99-nvidia.toml", V3_NVIDIA_DROP_IN)
    write(root, NVIDIA_BINARY, "#!/bin/sh\n", 0o755)
    finding = NvidiaRuntime().check(host)
    assert finding.status is Status.OK, finding.observed
    assert finding.details["files"] == [MAIN, "/etc/containerd/conf.d/99-nvidia.toml"]
    assert finding.details["cri_plugin"] == "io.containerd.cri.v1.runtime"
    # Deep merge (containerd 2.x): runc from the main file survives next to nvidia.
    assert finding.details["runtimes"] == ["nvidia", "runc"]
    assert SystemdCgroup().check(host).status is Status.OK


def test_v3_drop_in_without_imports_is_not_effective(host: Host, root: Path) -> None:
    write(root, MAIN, V3_MAIN.replace("imports = ['/etc/containerd/conf.d/*.toml']\n", ""))
    write(root, "/etc/containerd/conf.d/99-nvidia.toml", V3_NVIDIA_DROP_IN)
    finding = NvidiaRuntime().check(host)
    assert finding.status is Status.FAIL
    assert finding.details["files"] == [MAIN]


def test_v3_drop_in_that_resets_default_runtime_wins(host: Host, root: Path) -> None:
    write(root, MAIN, V3_MAIN)
    write(root, "/etc/containerd/conf.d/99-nvidia.toml", V3_NVIDIA_DROP_IN)
    write(
        root,
        "/etc/containerd/conf.d/zz-local.toml",
        "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd]\n"
        "default_runtime_name = 'runc'\n",
    )
    finding = NvidiaRuntime().check(host)
    assert finding.status is Status.FAIL
    assert finding.details["default_runtime_name"] == "runc"


def test_no_config_file_means_builtin_runc(host: Host) -> None:
    finding = NvidiaRuntime().check(host)
    assert finding.status is Status.FAIL
    assert "built-in defaults" in finding.observed
    assert "containerd config default | sudo tee /etc/containerd/config.toml" in (
        finding.remedy or ""
    )


def test_missing_explicit_import_and_bad_toml_are_reported(host: Host, root: Path) -> None:
    write(root, MAIN, 'version = 2\nimports = ["/etc/containerd/extra.toml"]\n')
    with pytest.raises(ContainerdConfigError, match=r"extra\.toml: no such file"):
        load_effective(host)
    write(root, MAIN, "version = 2\n[plugins\n")
    finding = NvidiaRuntime().check(host)
    assert finding.status is Status.FAIL
    assert "invalid TOML" in finding.observed


def test_relative_import_resolves_against_the_importing_file(host: Host, root: Path) -> None:
    write(root, MAIN, 'version = 3\nimports = ["conf.d/nvidia.toml"]\n')
    write(root, "/etc/containerd/conf.d/nvidia.toml", V3_NVIDIA_DROP_IN)
    cfg = load_effective(host)
    assert cfg.files == [MAIN, "/etc/containerd/conf.d/nvidia.toml"]
    assert cfg.default_runtime_name() == "nvidia"


def test_relative_glob_import_is_rooted_at_slash_on_containerd_1(host: Host, root: Path) -> None:
    """containerd 1.x globs a relative pattern from its working directory (/), not from
    /etc/containerd: the nvidia drop-in is never loaded, so the check must fail; 2.x joins
    the pattern to the importing file's directory and does load it."""
    write(root, MAIN, 'version = 2\nimports = ["conf.d/*.toml"]\n')
    write(root, "/etc/containerd/conf.d/99-nvidia.toml", NVIDIA_V2_DROP_IN)
    old = load_effective(host, containerd_major=1)
    assert old.files == [MAIN]
    assert old.default_runtime_name() == "runc"
    new = load_effective(host, containerd_major=2)
    assert new.files == [MAIN, "/etc/containerd/conf.d/99-nvidia.toml"]
    assert new.default_runtime_name() == "nvidia"


def test_relative_glob_matches_containerd_1_config_dump(tmp_path: Path, default_v2: str) -> None:
    """The real containerd 1.6, started from / as systemd starts it, agrees."""
    directory = tmp_path / "etc"
    (directory / "conf.d").mkdir(parents=True)
    (directory / "conf.d" / "99-nvidia.toml").write_text(NVIDIA_V2_DROP_IN)
    main = directory / "config.toml"
    main.write_text(default_v2.replace("imports = []", 'imports = ["conf.d/*.toml"]', 1))
    theirs = _containerd_dump(main, cwd="/")["plugins"][CRI_V2]["containerd"]
    ours = load_effective(Host(Path("/")), str(main), containerd_major=1)
    assert ours.default_runtime_name() == theirs["default_runtime_name"] == "runc"
    assert set(ours.runtimes()) == set(theirs["runtimes"]) == {"runc"}


def test_drop_in_with_higher_version_than_root_is_refused(host: Host, root: Path) -> None:
    write(root, MAIN, 'version = 2\nimports = ["/etc/containerd/conf.d/*.toml"]\n')
    write(root, "/etc/containerd/conf.d/99-nvidia.toml", V3_NVIDIA_DROP_IN)
    with pytest.raises(ContainerdConfigError, match=r"needs containerd 2\.x"):
        load_effective(host, containerd_major=1)


# ------------------------------------------- the merge against containerd's own `config dump`

NVIDIA_V2_DROP_IN = f"""\
version = 2
[plugins."{CRI_V2}".containerd]
  default_runtime_name = "nvidia"
  [plugins."{CRI_V2}".containerd.runtimes.nvidia]
    runtime_type = "io.containerd.runc.v2"
    [plugins."{CRI_V2}".containerd.runtimes.nvidia.options]
      BinaryName = "{NVIDIA_BINARY}"
"""


def _containerd_dump(main: Path, cwd: str | None = None) -> dict[str, Any]:
    """The configuration containerd 1.6 itself makes of ``main`` (``containerd config dump``)."""
    dump = subprocess.run(
        [CONTAINERD, "--config", str(main), "config", "dump"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=cwd,
    )
    return tomllib.loads(dump.stdout)


def _leaves(table: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    out: dict[tuple[str, ...], Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(_leaves(value, (*prefix, key)))
        else:
            out[(*prefix, key)] = value
    return out


def _scenarios(tmp: Path, default_v2: str) -> dict[str, Path]:
    """Main files (with real absolute imports) that containerd 1.6 can load itself."""
    out: dict[str, Path] = {}
    for name, main_text, drop_ins in [
        ("default", default_v2, {}),
        ("seed-steps", nvidia_ctk_configure(set_systemd_cgroup(default_v2)), {}),
        (
            "drop-in-replaces-cri",
            set_systemd_cgroup(default_v2),
            {"99-nvidia.toml": NVIDIA_V2_DROP_IN},
        ),
        (
            "two-drop-ins",
            set_systemd_cgroup(default_v2),
            {
                "50-nvidia.toml": NVIDIA_V2_DROP_IN,
                "60-unrelated.toml": 'version = 2\n[plugins."io.containerd.internal.v1.opt"]\n'
                'path = "/opt/elsewhere"\n',
            },
        ),
    ]:
        directory = tmp / name
        (directory / "conf.d").mkdir(parents=True)
        for file, text in drop_ins.items():
            (directory / "conf.d" / file).write_text(text)
        imports = f'imports = ["{directory}/conf.d/*.toml"]'
        main = directory / "config.toml"
        main.write_text(main_text.replace("imports = []", imports, 1))
        out[name] = main
    return out


def test_effective_merge_matches_containerd_config_dump(tmp_path: Path, default_v2: str) -> None:
    """The strong check: containerd 1.6 itself merges the same files; every value our merge
    reports for the CRI plugin must be what containerd dumps, and no runtime may differ."""
    real = Host(Path("/"))
    for name, main in _scenarios(tmp_path, default_v2).items():
        theirs = _containerd_dump(main)
        ours = load_effective(real, str(main), containerd_major=1)
        their_cri = theirs["plugins"][CRI_V2]["containerd"]
        assert ours.default_runtime_name() == their_cri["default_runtime_name"], name
        assert set(ours.runtimes()) == set(their_cri.get("runtimes", {})), name
        for runtime, table in ours.runtimes().items():
            their_options = their_cri["runtimes"][runtime].get("options", {})
            assert table.get("options", {}).get("SystemdCgroup", False) == their_options.get(
                "SystemdCgroup", False
            ), (name, runtime)
        their_leaves = _leaves(theirs["plugins"][CRI_V2])
        for key, value in _leaves(ours.data["plugins"][CRI_V2]).items():
            if value in ({}, []):
                continue
            assert their_leaves.get(key) == value, (name, key)
    # The scenario that makes naive merging wrong really happened: runc is gone.
    replaced = load_effective(real, str(tmp_path / "drop-in-replaces-cri" / "config.toml"))
    assert set(replaced.runtimes()) == {"nvidia"}


# ------------------------------------------------ remedies never overwrite a person's file

DEBIAN_ETC_CONFIG = (
    Path(__file__).parents[1] / "fixtures" / "containerd" / "debian-1.6.20-etc-config.toml"
).read_text()


def test_builtin_runc_remedy_edits_the_existing_file_in_place(host: Host, root: Path) -> None:
    """Debian's package ships a config.toml with a CRI section but no runtimes, so runc is
    containerd's built-in one. The remedy used to be the no-config one, `containerd config
    default | sudo tee /etc/containerd/config.toml`: pasted, it replaced the file and every
    edit in it. It must point at an edit in place instead."""
    edited = DEBIAN_ETC_CONFIG.replace("[plugins]", "# sandbox mirror set by ops\n[plugins]")
    write(root, MAIN, edited)
    finding = SystemdCgroup().check(host)
    assert finding.status is Status.FAIL
    assert "built-in defaults" in finding.observed
    remedy = finding.remedy or ""
    assert "tee" not in remedy and "config default" not in remedy, remedy
    assert "worldland join --yes --only containerd.systemd-cgroup" in remedy and MAIN in remedy
