"""join and reset end to end on a fake root: plan, apply through the journal, resume, undo.

The kernel and swap steps are the subjects (their tools are faked statefully, everything
else is real: files, modes, the journal); the other steps build on the same machinery.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.join.conftest import FSTAB, FakeHost, snapshot
from worldland_cli.host import Host
from worldland_cli.join.actions import Action, Manual, RunCommand, WriteFile, sha256_text
from worldland_cli.join.journal import Journal
from worldland_cli.join.plan import plan_join
from worldland_cli.join.run import JoinFailed, join_host, reset_host
from worldland_cli.main import app
from worldland_cli.requirements import containerd, kernel, system
from worldland_cli.requirements.base import Finding, JoinSettings, Requirement, Status

SETTINGS = JoinSettings()


def cli(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def steps() -> list[Requirement]:
    return [kernel.Modules(), kernel.Sysctl(), system.Swap()]


def all_met(fake: FakeHost) -> bool:
    return all(r.check(fake.host).status is Status.OK for r in steps())


def test_the_plan_covers_each_unmet_step_with_diffs_and_changes_nothing(fake: FakeHost) -> None:
    before = snapshot(fake.root)
    plan = plan_join(fake.host, steps(), SETTINGS)
    assert [s.id for s in plan.steps] == ["kernel.modules", "kernel.sysctl", "system.swap"]
    kinds = [[a.describe() for a in s.actions] for s in plan.steps]
    assert kinds == [
        ["write /etc/modules-load.d/k8s.conf", "run modprobe -a overlay br_netfilter"],
        ["write /etc/sysctl.d/99-kubernetes.conf", "apply the sysctls (sysctl --system)"],
        ["turn swap off now", "write /etc/fstab"],
    ]
    fstab_diff = plan.steps[2].diffs[1]
    assert "-/swap.img\tnone\tswap\tsw\t0\t0" in fstab_diff
    assert "+#/swap.img\tnone\tswap\tsw\t0\t0" in fstab_diff
    assert snapshot(fake.root) == before
    assert fake.calls() == []


def test_join_meets_every_step_and_a_second_join_plans_nothing(fake: FakeHost) -> None:
    result = join_host(fake.host, fake.journal, steps(), SETTINGS)
    assert result.done == ["kernel.modules", "kernel.sysctl", "system.swap"]
    assert all_met(fake)
    assert (fake.root / "etc/fstab").read_text() == FSTAB.replace("/swap.img", "#/swap.img")
    assert (fake.root / "etc/fstab").stat().st_mode & 0o777 == 0o644
    assert fake.calls() == ["modprobe -a overlay br_netfilter", "sysctl --system", "swapoff -a"]
    assert plan_join(fake.host, steps(), SETTINGS).empty
    again = join_host(fake.host, fake.journal, steps(), SETTINGS)
    assert again.done == [] and again.met == ["kernel.modules", "kernel.sysctl", "system.swap"]


def test_reset_restores_every_file_byte_for_byte(fake: FakeHost) -> None:
    fstab = fake.root / "etc/fstab"
    fstab.chmod(0o640)
    os.chown(fstab, 0, 4)  # group adm, as some images ship it
    before = snapshot(fake.root)
    join_host(fake.host, fake.journal, steps(), SETTINGS)
    assert snapshot(fake.root) != before
    result = reset_host(fake.host, fake.journal)
    assert result.failures == []
    assert snapshot(fake.root) == before
    assert result.journal_moved_to is not None
    assert Journal(fake.host).entries() == []  # the next join starts a new journal


def crash_after(events: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the process 'die' right after the journal's ``events``-th line is written."""
    real = Journal._append
    written = 0

    def append(self: Journal, doc: dict[str, object]) -> None:
        nonlocal written
        real(self, doc)
        written += 1
        if written == events:
            raise KeyboardInterrupt  # as a kill: nothing after it runs, no 'failed' line

    monkeypatch.setattr(Journal, "_append", append)


# 6 actions, each a 'begin' and a 'done' line: a crash after any of the 12.
@pytest.mark.parametrize("events", range(1, 13))
def test_a_join_cut_short_anywhere_ends_the_same_when_run_again(
    fake: FakeHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, events: int
) -> None:
    before = snapshot(fake.root)
    crash_after(events, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        join_host(fake.host, fake.journal, steps(), SETTINGS)
    monkeypatch.undo()
    join_host(fake.host, fake.journal, steps(), SETTINGS)
    assert all_met(fake)
    assert (fake.root / "etc/fstab").read_text() == FSTAB.replace("/swap.img", "#/swap.img")
    assert reset_host(fake.host, fake.journal).failures == []
    assert snapshot(fake.root) == before


@pytest.mark.parametrize("events", [1, 2, 5, 8, 11])
def test_reset_after_a_partial_join_undoes_exactly_what_was_done(
    fake: FakeHost, monkeypatch: pytest.MonkeyPatch, events: int
) -> None:
    before = snapshot(fake.root)
    crash_after(events, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        join_host(fake.host, fake.journal, steps(), SETTINGS)
    monkeypatch.undo()
    assert reset_host(fake.host, fake.journal).failures == []
    assert snapshot(fake.root) == before


def test_a_step_that_fails_names_itself_and_its_log_and_reset_still_works(
    fake: FakeHost,
) -> None:
    before = snapshot(fake.root)
    # An /etc/sysctl.d that is a file: the sysctl step cannot write its drop-in.
    (fake.root / "etc/sysctl.d").rmdir()
    (fake.root / "etc/sysctl.d").write_text("not a directory\n")
    broken = snapshot(fake.root)
    with pytest.raises(JoinFailed) as failed:
        join_host(fake.host, fake.journal, steps(), SETTINGS)
    assert failed.value.message.startswith("kernel.sysctl: cannot write /etc/sysctl.d/99-")
    assert failed.value.hint is not None and "var/lib/worldland/join/logs/" in failed.value.hint
    states = [(e.step, e.state) for e in fake.journal.entries()]
    assert states == [("kernel.modules", "done"), ("kernel.modules", "done"),
                      ("kernel.sysctl", "failed")]  # fmt: skip
    assert reset_host(fake.host, fake.journal).failures == []
    assert snapshot(fake.root) == broken != before


def test_a_file_changed_since_the_plan_is_not_overwritten(fake: FakeHost) -> None:
    plan = plan_join(fake.host, [system.Swap()], SETTINGS)
    write = plan.steps[0].actions[1]
    assert isinstance(write, WriteFile)
    (fake.root / "etc/fstab").write_text(FSTAB + "# an edit made meanwhile\n")
    from worldland_cli.join.actions import ActionFailed, Output

    with pytest.raises(ActionFailed, match="changed since the plan was made"):
        write.apply(fake.host, Output(fake.host, None))
    assert (fake.root / "etc/fstab").read_text().endswith("# an edit made meanwhile\n")


def test_actions_round_trip_through_the_journal() -> None:
    actions: list[Action] = [
        WriteFile("/etc/x", "a\n", 0o600, "abc", ("containerd", "--config", "%s", "config")),
        RunCommand(("kubeadm", "join"), ("kubeadm", "reset", "-f"), ("/etc/kubelet.conf",)),
    ]
    for action in actions:
        assert Action.from_json(json.loads(json.dumps(action.to_json()))) == action


def test_a_torn_last_line_is_ignored(fake: FakeHost) -> None:
    join_host(fake.host, fake.journal, [system.Swap()], SETTINGS)
    steps_file = fake.root / "var/lib/worldland/join/steps.jsonl"
    with steps_file.open("a") as f:
        f.write('{"seq": 3, "event": "beg')
    assert [e.state for e in Journal(fake.host).entries()] == ["done", "done"]


def test_the_cli_plans_asks_and_refuses_to_ask_under_json(
    fake: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("worldland_cli.requirements.all_requirements", lambda **_: steps())
    root = str(fake.root)
    dry = cli("join", "--dry-run", "--root", root, "--json")
    assert dry.exit_code == 0, dry.output
    doc = json.loads(dry.stdout)
    assert doc["ok"] and [s["id"] for s in doc["plan"]["steps"]] == [r.id for r in steps()]
    refused = cli("join", "--root", root, "--json")
    assert refused.exit_code == 2 and "add --yes" in json.loads(refused.stdout)["error"]
    declined = cli("join", "--root", root, input="n\n")
    assert declined.exit_code == 1 and fake.calls() == []
    done = cli("join", "--root", root, "--yes")
    assert done.exit_code == 0, done.output
    assert "Joined: 3 step(s) done" in done.stdout
    assert cli("join", "--root", root, "--yes").stdout.startswith("Nothing to do")
    listed = json.loads(cli("reset", "--dry-run", "--root", root, "--json").stdout)
    assert "/etc/fstab" in listed["restore"] and listed["undo"][0] == "write /etc/fstab"
    assert cli("reset", "--root", root, "--yes").exit_code == 0
    assert cli("reset", "--root", root, "--yes").stdout.startswith("Nothing to undo")


def test_packages_and_units_are_installed_enabled_and_taken_back_with_purge(
    fake: FakeHost,
) -> None:
    before = snapshot(fake.root)
    needed = [containerd.Installed(), containerd.Running()]
    plan = plan_join(fake.host, needed, SETTINGS)
    assert [a.describe() for s in plan.steps for a in s.actions] == [
        "install containerd",
        "enable and start containerd",
    ]
    assert join_host(fake.host, fake.journal, needed, SETTINGS).done == [
        "containerd.installed",
        "containerd.running",
    ]
    assert all(r.check(fake.host).status is Status.OK for r in needed)
    wants = fake.root / "etc/systemd/system/multi-user.target.wants/containerd.service"
    assert os.readlink(wants) == "/lib/systemd/system/containerd.service"
    kept = reset_host(fake.host, fake.journal)  # without --purge: the package stays
    assert kept.failures == [] and not wants.is_symlink()
    assert containerd.Installed().check(fake.host).status is Status.OK
    assert "apt-get purge -y containerd" not in fake.calls()
    assert snapshot(fake.root) != before


def test_purge_removes_only_what_join_installed(fake: FakeHost) -> None:
    before = snapshot(fake.root)
    needed = [containerd.Installed(), containerd.Running()]
    join_host(fake.host, fake.journal, needed, SETTINGS)
    assert reset_host(fake.host, fake.journal, purge=True).failures == []
    assert snapshot(fake.root) == before
    assert "apt-get purge -y containerd" in fake.calls()


class ConfAndApply(Requirement):
    """Met when /etc/sysctl.d/90-x.conf sets x: the check sees the file, not the step's
    second action (``then``), as containerd's checks see its config and not its restart."""

    id = "test.conf"
    title = "x configured and applied"
    PATH = "/etc/sysctl.d/90-x.conf"

    def __init__(self, then: Action) -> None:
        self.then = then

    def check(self, host: Host) -> Finding:
        text = host.read_text(self.PATH) or ""
        return self.ok(text.strip()) if text.startswith("x = ") else self.fail("no x", None)

    def plan(self, host: Host, finding: Finding, settings: JoinSettings) -> list[Action]:
        current = host.read_text(self.PATH)
        return [WriteFile(self.PATH, "x = 1\n", before=sha256_text(current)), self.then]


APPLY = RunCommand(("sysctl", "--system"), summary="apply the sysctls")


def test_a_file_changed_after_a_join_cut_short_is_theirs_and_the_step_still_finishes(
    fake: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = ConfAndApply(APPLY)
    crash_after(1, monkeypatch)  # the write begun, not done
    with pytest.raises(KeyboardInterrupt):
        join_host(fake.host, fake.journal, [step], SETTINGS)
    monkeypatch.undo()
    conf = fake.root / ConfAndApply.PATH.lstrip("/")
    conf.write_text("x = 2\n")  # meanwhile, someone else: the check passes with theirs
    plan = plan_join(fake.host, [step], SETTINGS, journal=fake.journal)
    assert [a.describe() for a in plan.steps[0].actions] == [
        "write /etc/sysctl.d/90-x.conf",
        "apply the sysctls",
    ]
    assert plan.steps[0].finding.observed.startswith("finishing what a join cut short")
    assert join_host(fake.host, fake.journal, [step], SETTINGS).done == ["test.conf"]
    assert conf.read_text() == "x = 2\n"  # not overwritten
    assert fake.calls() == ["sysctl --system"]
    assert fake.journal.unfinished() == {}
    assert join_host(fake.host, fake.journal, [step], SETTINGS).met == ["test.conf"]


def test_a_step_that_failed_halfway_is_finished_once_its_check_passes(fake: FakeHost) -> None:
    """A Manual after a write fails the step; once the check passes (the person did it),
    the next join finishes the step instead of asking again, and asks nothing after."""
    step = ConfAndApply(Manual("reload x by hand"))
    with pytest.raises(JoinFailed, match="needs a person: reload x by hand"):
        join_host(fake.host, fake.journal, [step], SETTINGS)
    assert fake.journal.unfinished() == {"test.conf": (Manual("reload x by hand"),)}
    assert join_host(fake.host, fake.journal, [step], SETTINGS).done == ["test.conf"]
    assert fake.journal.unfinished() == {}
    states = [(e.action.kind, e.state) for e in fake.journal.entries()]
    assert states == [("write-file", "done"), ("manual", "failed"), ("manual", "done")]
    assert plan_join(fake.host, [step], SETTINGS, journal=fake.journal).empty


def test_only_runs_the_named_steps_and_leaves_the_rest(fake: FakeHost) -> None:
    """doctor's fix for a step only join can take is `worldland join --only STEP`."""
    root = str(fake.root)
    planned = json.loads(
        cli("join", "--dry-run", "--root", root, "--only", "kernel", "--json").stdout
    )
    assert [s["id"] for s in planned["plan"]["steps"]] == ["kernel.modules", "kernel.sysctl"]
    assert planned["plan"]["skipped"] == []
    done = cli("join", "--yes", "--root", root, "--only", "system.swap")
    assert done.exit_code == 0, done.output
    assert system.Swap().check(fake.host).status is Status.OK
    assert kernel.Modules().check(fake.host).status is Status.FAIL
    unknown = cli("join", "--dry-run", "--root", root, "--only", "kernel.nope")
    assert unknown.exit_code == 2 and "unknown check 'kernel.nope'" in unknown.output
