"""join's package steps on a fake Ubuntu root: the NVIDIA driver (with its reboot and the unit
that resumes join after it), the container toolkit, kubelet/kubeadm/kubectl.

The tools are the stateful fakes of tests/support/fakes_gpu.py and fakes_apt.py (repository
keys served without a network, real gpg, versions from the fake dpkg status); NVML is
patched, off until the simulated reboot.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from pytest_mock import MockerFixture
from typer.testing import CliRunner, Result

from tests.join.conftest import FakeHost, snapshot
from tests.support import fakes_apt, fakes_gpu
from tests.support.nvml import no_nvml, patch_t4  # noqa: F401  (no_nvml: a fixture)
from worldland_cli.join.actions import Reboot
from worldland_cli.join.journal import Journal
from worldland_cli.join.plan import plan_join
from worldland_cli.join.resume import UNIT, UNIT_PATH, retire, systemd_word
from worldland_cli.join.run import JoinFailed, join_host, reset_host
from worldland_cli.main import app
from worldland_cli.requirements import gpu, kube, toolkit
from worldland_cli.requirements.base import JoinSettings, Requirement, Status

SETTINGS = JoinSettings()
pytestmark = pytest.mark.usefixtures("no_nvml")  # no driver until a test "reboots"
WANTS = "etc/systemd/system/multi-user.target.wants"


def steps() -> list[Requirement]:
    return [gpu.Driver(), gpu.NvidiaSmi(), toolkit.NvidiaCtk(), kube.Binaries(),
            kube.KubeletEnabled()]  # fmt: skip


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def ubuntu(fake: FakeHost, monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    """The join fixture's fresh Ubuntu root (no driver yet), joined with these steps only."""
    monkeypatch.setattr("worldland_cli.requirements.all_requirements", lambda **_: steps())
    return fake


def statuses(fake: FakeHost) -> dict[str, Status]:
    return {r.id: r.check(fake.host).status for r in steps()}


def resume_argv(root: Path) -> list[str]:
    """What the resume unit runs, without the executable (the test runs it in-process)."""
    text = (root / UNIT_PATH.lstrip("/")).read_text()
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    return shlex.split(exec_start.removeprefix("ExecStart="))[1:]


def test_the_dry_run_shows_each_step_as_shell_a_person_could_paste(ubuntu: FakeHost) -> None:
    before = snapshot(ubuntu.root)
    plan = plan_join(ubuntu.host, steps(), SETTINGS)
    shell = {s.id: [a.as_shell() for a in s.actions] for s in plan.steps}
    download = "/var/lib/worldland/downloads"
    assert shell["gpu.driver"] == [
        "sudo apt-get update && sudo apt-get install -y ubuntu-drivers-common",
        "sudo ubuntu-drivers install nvidia:535",
        f"sudo install -D -m 644 /dev/stdin {UNIT_PATH} <<'EOF'\n"
        + (plan.steps[0].actions[2].content)  # type: ignore[attr-defined]
        + "EOF",
        f"sudo systemctl enable {UNIT}",
        "sudo reboot",
    ]
    assert "ExecStart=/usr/local/bin/worldland join --yes\n" in plan.steps[0].diffs[2]
    nvidia_smi = plan.steps[1]
    assert (nvidia_smi.id, nvidia_smi.actions, nvidia_smi.same_as) == (
        "gpu.nvidia-smi",
        (),
        "gpu.driver",
    )
    assert shell["toolkit.nvidia-ctk"][:2] == [
        f"sudo curl -fsSL --create-dirs -o {download}/nvidia-container-toolkit-keyring.asc "
        "https://nvidia.github.io/libnvidia-container/gpgkey",
        "sudo gpg --batch --yes --dearmor -o "
        "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg "
        f"{download}/nvidia-container-toolkit-keyring.asc",
    ]
    toolkit_list = plan.steps[2].diffs[2]
    assert (
        "+deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] "
        "https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /\n" in toolkit_list
    )
    assert shell["toolkit.nvidia-ctk"][3] == (
        "sudo apt-get update && sudo apt-get install -y nvidia-container-toolkit"
    )
    assert shell["kube.binaries"][:2] == [
        f"sudo curl -fsSL --create-dirs -o {download}/kubernetes-apt-keyring.asc "
        "https://pkgs.k8s.io/core:/stable:/v1.29/deb/Release.key",
        "sudo gpg --batch --yes --dearmor -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg "
        f"{download}/kubernetes-apt-keyring.asc",
    ]
    assert (
        "+deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] "
        "https://pkgs.k8s.io/core:/stable:/v1.29/deb/ /\n" in plan.steps[3].diffs[2]
    )
    assert shell["kube.binaries"][3] == (
        "sudo apt-get update && sudo apt-get install -y kubelet kubeadm kubectl && "
        "sudo apt-mark hold kubelet kubeadm kubectl"
    )
    assert shell["kube.kubelet-enabled"] == ["sudo systemctl enable kubelet"]
    assert snapshot(ubuntu.root) == before
    assert not any(c.split()[0] in ("apt-get", "curl", "gpg", "ubuntu-drivers")
                   for c in ubuntu.calls())  # fmt: skip


def test_join_stops_for_the_reboot_and_the_resume_unit_completes_it(
    ubuntu: FakeHost, mocker: MockerFixture
) -> None:
    before = snapshot(ubuntu.root)
    root = str(ubuntu.root)
    stopped = cli("join", "--root", root, "--yes")
    assert stopped.exit_code == 0, stopped.output
    assert "Reboot now (sudo reboot)" in stopped.stdout
    assert "join continues after boot" in stopped.stdout
    assert f"journalctl -u {UNIT}" in stopped.stdout
    assert (ubuntu.root / "run/reboot-required").exists()
    assert (ubuntu.root / WANTS / UNIT).is_symlink()
    assert (ubuntu.root / "lib/modprobe.d/nvidia-kms.conf").exists()
    events = [(e.step, e.action.kind, e.state) for e in Journal(ubuntu.host).entries()]
    assert events[-1] == ("gpu.driver", "reboot", "done")

    again = json.loads(cli("join", "--root", root, "--yes", "--json").stdout)
    assert again["ok"] and again["reboot_required"] and again["done"] == []
    assert [c for c in ubuntu.calls() if c.startswith("ubuntu-drivers install")] == [
        "ubuntu-drivers install --package-list /var/lib/worldland/ubuntu-drivers.packages "
        "nvidia:535"
    ]  # run again before the reboot, join only stops again

    fakes_gpu.reboot(ubuntu.root)
    patch_t4(mocker)
    last = plan_join(ubuntu.host, steps(), SETTINGS).steps[-1]
    assert (last.id, [a.as_shell() for a in last.actions]) == (
        "join.resume",
        [f"sudo systemctl disable {UNIT}"],
    )
    resumed = cli(*resume_argv(ubuntu.root), "--root", root)
    assert resumed.exit_code == 0, resumed.output
    assert "Joined: 3 step(s) done" in resumed.stdout
    assert set(statuses(ubuntu).values()) == {Status.OK}
    assert not (ubuntu.root / WANTS / UNIT).is_symlink()  # ran once, then disabled itself
    status = (ubuntu.root / "var/lib/dpkg/status").read_text()
    assert "Package: kubelet\nStatus: hold ok installed" in status
    assert (ubuntu.root / WANTS / "kubelet.service").is_symlink()

    assert plan_join(ubuntu.host, steps(), SETTINGS).empty
    assert retire(ubuntu.host) is None
    assert cli("join", "--root", root, "--yes").stdout.startswith("Nothing to do")

    reset = cli("reset", "--root", root, "--yes", "--purge")
    assert reset.exit_code == 0, reset.output
    assert snapshot(ubuntu.root) == before
    purged = [c for c in ubuntu.calls() if c.startswith("apt-get purge")]
    assert purged == [
        "apt-get purge -y kubelet kubeadm kubectl",
        "apt-get purge -y nvidia-container-toolkit",
        "apt-get purge -y nvidia-driver-535 linux-modules-nvidia-535-generic",
        "apt-get purge -y ubuntu-drivers-common",
    ]


def test_no_resume_unit_only_says_what_to_do(ubuntu: FakeHost) -> None:
    result = cli("join", "--root", str(ubuntu.root), "--yes", "--no-resume-unit")
    assert result.exit_code == 0, result.output
    assert "After the reboot run `sudo worldland join` again" in result.stdout
    assert not (ubuntu.root / UNIT_PATH.lstrip("/")).exists()
    assert not any(UNIT in c for c in ubuntu.calls())


def test_the_resume_unit_carries_the_flags_and_settings_of_the_join(
    ubuntu: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORLDLAND_HUB", "https://hub.example:8443")
    result = cli("join", "--root", str(ubuntu.root), "-y", "--kube-version", "1.30",
                 "--skip", "kube.kubelet-enabled", "--json")  # fmt: skip
    assert json.loads(result.stdout)["reboot_required"] is True
    assert resume_argv(ubuntu.root) == [
        "join",
        "--yes",
        "--skip",
        "kube.kubelet-enabled",
        "--kube-version",
        "1.30",
    ]
    text = (ubuntu.root / UNIT_PATH.lstrip("/")).read_text()
    assert "Environment=WORLDLAND_HUB=https://hub.example:8443\n" in text


def test_the_resume_unit_carries_the_hub_flags_with_the_ca_file_made_absolute(
    ubuntu: FakeHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The resumed join runs from /, so a CA file named relative to here is carried whole."""
    monkeypatch.chdir(tmp_path)
    hub = ["--hub", "https://hub.example:8443"]
    key = ["--private-key-file", "/root/wallet.key"]
    result = cli("join", "--root", str(ubuntu.root), "-y", *hub, "--hub-ca", "hub-ca.pem",
                 *key, "--json")  # fmt: skip
    assert json.loads(result.stdout)["reboot_required"] is True
    assert resume_argv(ubuntu.root) == [
        "join", "--yes", *hub, "--hub-ca", str(tmp_path / "hub-ca.pem"), *key
    ]  # fmt: skip


def test_systemd_words_survive_systemds_quoting() -> None:
    assert systemd_word("/usr/local/bin/worldland") == "/usr/local/bin/worldland"
    assert systemd_word("100%") == "100%%"
    assert systemd_word("a b") == '"a b"'
    assert systemd_word('say "$HOME"') == '"say \\"$$HOME\\""'
    assert systemd_word("X=$1", command=False) == '"X=$1"'


def test_kube_version_picks_the_repository_and_its_packages(ubuntu: FakeHost) -> None:
    needed = [kube.Binaries(), kube.KubeletEnabled()]
    join_host(ubuntu.host, ubuntu.journal, needed, JoinSettings(kube_version="1.30"))
    listing = (ubuntu.root / "etc/apt/sources.list.d/kubernetes.list").read_text()
    assert "https://pkgs.k8s.io/core:/stable:/v1.30/deb/ /" in listing
    found = kube.Binaries().check(ubuntu.host)
    assert found.status is Status.OK and found.details["versions"]["kubelet"] == "v1.30.2"


@pytest.mark.parametrize(
    ("flag", "value"), [("--kube-version", "v1.29"), ("--kube-version", "1.29/../x"),
                        ("--driver", "nvidia:535"), ("--driver", "535 && reboot")]
)  # fmt: skip
def test_versions_that_would_go_into_urls_and_package_names_are_checked(
    ubuntu: FakeHost, flag: str, value: str
) -> None:
    refused = cli("join", "--dry-run", "--root", str(ubuntu.root), flag, value)
    assert refused.exit_code == 2 and "is not a" in refused.output
    assert ubuntu.calls() == []


def test_a_kube_version_pkgs_k8s_io_does_not_have_fails_at_its_key(ubuntu: FakeHost) -> None:
    before = snapshot(ubuntu.root)
    with pytest.raises(JoinFailed) as failed:
        join_host(ubuntu.host, ubuntu.journal, [kube.Binaries()], JoinSettings(kube_version="1.99"))
    assert failed.value.message.startswith("kube.binaries: `curl -fsSL --create-dirs -o")
    assert "The requested URL returned error: 404" in failed.value.message
    assert reset_host(ubuntu.host, ubuntu.journal).failures == []
    assert snapshot(ubuntu.root) == before


def test_a_broken_mirror_names_the_step_and_its_log(ubuntu: FakeHost) -> None:
    before = snapshot(ubuntu.root)
    fakes_apt.break_mirror(ubuntu.fakes, "https://pkgs.k8s.io/core:/stable:/v1.29/deb/")
    needed = [toolkit.NvidiaCtk(), kube.Binaries()]
    with pytest.raises(JoinFailed) as failed:
        join_host(ubuntu.host, ubuntu.journal, needed, SETTINGS)
    assert failed.value.message.startswith("kube.binaries: `apt-get update -qq` failed")
    assert "E: Some index files failed to download" in failed.value.message
    hint = failed.value.hint or ""
    log = Path(hint.split("what it printed is in ")[1].split(";")[0])
    assert log.name.endswith("-kube.binaries.log") and "Hash Sum mismatch" in log.read_text()
    assert toolkit.NvidiaCtk().check(ubuntu.host).status is Status.OK  # the step before: done
    assert reset_host(ubuntu.host, ubuntu.journal, purge=True).failures == []
    assert snapshot(ubuntu.root) == before


def test_a_driver_branch_ubuntu_drivers_does_not_offer_fails_and_says_what_it_offers(
    ubuntu: FakeHost,
) -> None:
    before = snapshot(ubuntu.root)
    with pytest.raises(JoinFailed) as failed:
        join_host(ubuntu.host, ubuntu.journal, [gpu.Driver()], JoinSettings(driver="999"))
    message = failed.value.message
    assert message.startswith(
        "gpu.driver: `ubuntu-drivers install nvidia:999` exited 0 but installed no "
        "nvidia-driver-999"
    )
    assert "nvidia-driver-550, nvidia-driver-535, nvidia-driver-470" in message
    assert not (ubuntu.root / "var/run/reboot-required").exists()
    assert reset_host(ubuntu.host, ubuntu.journal, purge=True).failures == []
    assert snapshot(ubuntu.root) == before


def test_a_driver_still_not_loaded_after_the_reboot_is_left_to_a_person(
    ubuntu: FakeHost,
) -> None:
    assert join_host(ubuntu.host, ubuntu.journal, [gpu.Driver()], SETTINGS).reboot
    (ubuntu.root / "run/reboot-required").unlink()  # rebooted, but the module did not load
    plan = plan_join(ubuntu.host, [gpu.Driver()], SETTINGS)
    [manual] = plan.steps[0].actions
    assert "nvidia-driver-535 is installed but its kernel module is not loaded" in (
        manual.as_shell()
    )
    with pytest.raises(JoinFailed, match="needs a person"):
        join_host(ubuntu.host, ubuntu.journal, [gpu.Driver()], SETTINGS)


def test_a_masked_kubelet_is_unmasked_and_reset_masks_it_again(ubuntu: FakeHost) -> None:
    mask = ubuntu.root / "etc/systemd/system/kubelet.service"
    mask.symlink_to("/dev/null")
    before = snapshot(ubuntu.root)
    needed = [kube.Binaries(), kube.KubeletEnabled()]
    assert join_host(ubuntu.host, ubuntu.journal, needed, SETTINGS).done == [
        "kube.binaries",
        "kube.kubelet-enabled",
    ]
    assert "systemctl unmask kubelet" in ubuntu.calls()
    assert kube.KubeletEnabled().check(ubuntu.host).status is Status.OK
    assert reset_host(ubuntu.host, ubuntu.journal, purge=True).failures == []
    assert snapshot(ubuntu.root) == before
    assert kube.KubeletEnabled().check(ubuntu.host).observed == "kubelet.service is masked"


def crash_after(events: int, monkeypatch: pytest.MonkeyPatch) -> None:
    real = Journal._append
    written = 0

    def append(self: Journal, doc: dict[str, object]) -> None:
        nonlocal written
        real(self, doc)
        written += 1
        if written == events:
            raise KeyboardInterrupt

    monkeypatch.setattr(Journal, "_append", append)


# Before the reboot: 5 actions, 10 journal lines, each a place to be cut short. After it, the
# same kinds of action the core's own crash test covers, 10 of them: a dearmor, both installs
# and the retirement cut short after their "begin".
@pytest.mark.parametrize("events", [*range(1, 11), 13, 17, 25, 29])
def test_a_join_cut_short_anywhere_ends_the_same_when_run_again(
    ubuntu: FakeHost, mocker: MockerFixture, monkeypatch: pytest.MonkeyPatch, events: int
) -> None:
    before = snapshot(ubuntu.root)
    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        crash_after(events, patched)
        assert join_host(ubuntu.host, ubuntu.journal, steps(), SETTINGS).reboot
        fakes_gpu.reboot(ubuntu.root)
        patch_t4(mocker)
        join_host(ubuntu.host, ubuntu.journal, steps(), SETTINGS)
    if join_host(ubuntu.host, ubuntu.journal, steps(), SETTINGS).reboot:
        fakes_gpu.reboot(ubuntu.root)
        patch_t4(mocker)
        assert join_host(ubuntu.host, ubuntu.journal, steps(), SETTINGS).reboot is None
    assert set(statuses(ubuntu).values()) == {Status.OK}
    assert not (ubuntu.root / WANTS / UNIT).is_symlink()
    assert reset_host(ubuntu.host, ubuntu.journal, purge=True).failures == []
    assert snapshot(ubuntu.root) == before


def test_the_new_actions_round_trip_through_the_journal() -> None:
    from worldland_cli.join.actions import Action, InstallDriver

    driver = InstallDriver("nvidia:535", "nvidia-driver-535", "/x", ("/lib/y",))
    for action in (Reboot("a module loads at boot"), driver):
        assert Action.from_json(json.loads(json.dumps(action.to_json()))) == action
