"""What join does to a host, one small frozen dataclass per kind of change.

An action can say what it will do (``describe``, a unified ``diff`` for files, and
``as_shell``: what a person would paste, which is also doctor's remedy), apply itself
through :class:`~worldland_cli.host.Host`, and undo itself from what the journal recorded
before it ran (``prepare``). Files an action touches (``touches``) are backed up by the
journal before it runs and restored by ``reset``; ``undo`` only reverses what is not a file
(a unit enabled, packages installed). Every action is safe to apply twice: an interrupted
join runs the action that was in flight again.

Actions are serialised into the journal as ``{"kind": ..., **fields}``, so ``reset`` can
undo a join made by an earlier process.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import shlex
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from worldland_cli.host import CommandResult, Host

# apt and dpkg take minutes on a slow mirror; a kubeadm join waits for the API server.
LONG = 1800.0
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
# join's state directory on the managed host: the journal's, and where actions keep what they
# download or record (a repository key, ubuntu-drivers' package list). Defined with the
# actions, not the journal, so the requirements' plans can name paths in it.
STATE_DIR = "/var/lib/worldland"
STATE_ENV = "WORLDLAND_STATE"


def state_dir(environ: dict[str, str] | None = None) -> str:
    """The state directory as a path of the managed system (``WORLDLAND_STATE`` moves it)."""
    value = (environ if environ is not None else dict(os.environ)).get(STATE_ENV, "").strip()
    return value if value.startswith("/") else STATE_DIR


class ActionFailed(Exception):
    """An action could not do its part; the message says what happened."""


class RebootRequired(Exception):
    """Raised by :class:`Reboot`: join stops here, cleanly, and continues after the reboot."""


class Output:
    """Where an action's commands write what they printed: the step's log file.

    ``remember`` journals a fact at once (a node id the hub gave, a public key), for the
    action's ``undo``: what join did elsewhere than in files cannot be read back from the
    host once reset has restored them.
    """

    def __init__(
        self,
        host: Host,
        log_path: str | None,
        remember: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.host = host
        self.log_path = log_path
        self._remember = remember

    def remember(self, **facts: Any) -> None:
        if self._remember is not None:
            self._remember(facts)

    def command(self, result: CommandResult) -> None:
        if self.log_path is None:
            return
        text = f"$ {shlex.join(result.argv)}\n{result.stdout}{result.stderr}"
        text += f"[exit {result.returncode}, {result.duration:.1f} s]\n"
        self.host.append(self.log_path, text)

    def note(self, line: str) -> None:
        if self.log_path is not None:
            self.host.append(self.log_path, line.rstrip("\n") + "\n")


def run_checked(
    host: Host,
    out: Output,
    argv: tuple[str, ...],
    *,
    timeout: float = LONG,
    env: dict[str, str] | None = None,
) -> CommandResult:
    """Run ``argv``, log it, and fail the action with the command's own words if it fails."""
    result = host.run(argv, timeout=timeout, env=env)
    out.command(result)
    if not result.ok:
        raise ActionFailed(f"`{shlex.join(argv)}` failed: {result.describe_failure()}")
    return result


def file_diff(path: str, old: str, new: str) -> str:
    """A unified diff of one file, as a plan shows what a write changes ("" when nothing)."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=path, tofile=path
    )
    return "".join(lines)


def sha256_text(text: str | None) -> str:
    """The hash a plan records of a file it was made against ("" for no file)."""
    return "" if text is None else hashlib.sha256(text.encode()).hexdigest()


class Action(ABC):
    """One change to the host. Subclasses are frozen dataclasses registered by ``kind``."""

    kind: ClassVar[str]
    registry: ClassVar[dict[str, type[Action]]] = {}
    # No command a person could paste does this (it asks the hub for the step's parameters,
    # or it can only be planned once the steps before it have run): doctor's fix for a step
    # with such an action is join's own run of that step, `worldland join --only STEP`.
    join_only: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Action.registry[cls.kind] = cls

    @abstractmethod
    def describe(self) -> str:
        """One line for the plan."""

    @abstractmethod
    def as_shell(self) -> str:
        """What a person would paste to do the same (doctor's remedy)."""

    def diff(self, host: Host) -> str:
        """A unified diff of what it changes in files, "" when it changes none."""
        return ""

    def touches(self) -> tuple[str, ...]:
        """Files this action may change: the journal backs them up before it runs."""
        return ()

    def prepare(self, host: Host) -> dict[str, Any]:
        """Facts ``undo`` needs about the host before the action (journaled with it)."""
        return {}

    @abstractmethod
    def apply(self, host: Host, out: Output) -> None:
        """Do it; raise :class:`ActionFailed` when it cannot be done."""

    def finish(self, host: Host, out: Output) -> None:
        """Do it as the rest of a step a join cut short, whose check passes already.

        A step's check often sees only its files (containerd's config), not what comes after
        them (the restart that makes containerd read it), so the next join runs what the
        journal shows undone of the step. Most actions simply apply again.
        """
        self.apply(host, out)

    def undo(self, host: Host, before: dict[str, Any], purge: bool, out: Output) -> None:
        """Reverse what is not a file (the journal restores files afterwards).

        ``before`` is what :meth:`prepare` recorded, plus the facts the action remembered
        while it ran (:meth:`Output.remember`).
        """
        return None

    def after_restore(self, host: Host, out: Output) -> None:
        """Runs once files are restored (a service reloads its restored config)."""
        return None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}  # type: ignore[call-overload]

    @staticmethod
    def from_json(doc: dict[str, Any]) -> Action:
        cls = Action.registry[str(doc["kind"])]
        names = {f.name: f.type for f in fields(cls)}  # type: ignore[arg-type]
        values = {
            name: tuple(value) if isinstance(value, list) else value
            for name, value in doc.items()
            if name in names
        }
        return cls(**values)


@dataclass(frozen=True)
class WriteFile(Action):
    """Write a whole file (rendered from templates/, or a file edited in place).

    ``before`` is the hash of what the plan saw there: if the file changed since, the plan
    is stale and the action refuses rather than overwrite someone's edit. ``validate`` runs
    on the new text at a temporary path before it takes the file's name (Ansible's
    ``validate``); ``%s`` in it stands for that path.
    """

    kind: ClassVar[str] = "write-file"
    path: str
    content: str
    mode: int | None = None  # None: keep the file's mode (0644 for a new file)
    before: str | None = None
    validate: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"write {self.path}" + (f" (mode {self.mode:o})" if self.mode is not None else "")

    def as_shell(self) -> str:
        """A here-document into ``install -D`` (which makes missing directories, as the
        host's write does); its delimiter is a word no line of the content is."""
        body = self.content if self.content.endswith("\n") else self.content + "\n"
        mode = f"{self.mode:o}" if self.mode is not None else "644"
        lines = set(body.splitlines())
        delimiter = next(
            word for n in range(len(lines) + 1) if (word := "EOF" + "_" * n) not in lines
        )
        return (
            f"sudo install -D -m {mode} /dev/stdin {shlex.quote(self.path)} <<'{delimiter}'\n"
            f"{body}{delimiter}"
        )

    def _mode(self, host: Host) -> int:
        if self.mode is not None:
            return self.mode
        found = host.stat(self.path)
        return found.mode if found is not None and found.kind == "file" else 0o644

    def diff(self, host: Host) -> str:
        old = host.read_text(self.path) or ""
        return file_diff(self.path, old, self.content)

    def touches(self) -> tuple[str, ...]:
        return (self.path,)

    def apply(self, host: Host, out: Output) -> None:
        current = host.read_text(self.path)
        if current == self.content:
            return
        if self.before is not None and sha256_text(current) != self.before:
            raise ActionFailed(
                f"{self.path} changed since the plan was made; run join again to plan anew"
            )
        mode = self._mode(host)
        if self.validate:
            candidate = f"{self.path}.worldland-new"
            host.write_atomic(candidate, self.content, mode)
            try:
                argv = tuple(str(host.path(candidate)) if a == "%s" else a for a in self.validate)
                run_checked(host, out, argv, timeout=60.0)
            except ActionFailed:
                host.remove(candidate)
                raise
            host.rename(candidate, self.path)
            return
        host.write_atomic(self.path, self.content, mode)

    def finish(self, host: Host, out: Output) -> None:
        """Written already: nothing to do. Changed since the plan by someone else: theirs
        now, and the step's check passes with it; the actions after this one still run."""
        current = host.read_text(self.path)
        theirs = self.before is not None and sha256_text(current) != self.before
        if current != self.content and theirs:
            out.note(f"{self.path} changed since join planned it: left as it is")
            return
        self.apply(host, out)


@dataclass(frozen=True)
class RunCommand(Action):
    """A command, with the command that undoes it when there is one."""

    kind: ClassVar[str] = "run"
    argv: tuple[str, ...]
    undo_argv: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    summary: str = ""

    def describe(self) -> str:
        return self.summary or f"run {shlex.join(self.argv)}"

    def as_shell(self) -> str:
        return "sudo " + shlex.join(self.argv)

    def touches(self) -> tuple[str, ...]:
        return self.files

    def apply(self, host: Host, out: Output) -> None:
        run_checked(host, out, self.argv)

    def undo(self, host: Host, before: dict[str, Any], purge: bool, out: Output) -> None:
        if self.undo_argv:
            run_checked(host, out, self.undo_argv)


def dpkg_installed(host: Host, package: str) -> bool:
    result = host.run(("dpkg-query", "-W", "-f=${Status}", package))
    return result.ok and result.stdout.strip().endswith("installed")


@dataclass(frozen=True)
class InstallPackages(Action):
    """``apt-get install`` (and ``apt-mark hold`` for the Kubernetes tools).

    ``reset`` unholds them; only ``reset --purge`` removes them, and only those that were
    not installed before join.
    """

    kind: ClassVar[str] = "install-packages"
    packages: tuple[str, ...]
    hold: bool = False
    update: bool = False  # apt-get update first (a fresh host may have no package lists)

    def describe(self) -> str:
        held = " and hold them" if self.hold else ""
        return f"install {', '.join(self.packages)}{held}"

    def as_shell(self) -> str:
        line = "sudo apt-get update && " if self.update else ""
        line += "sudo apt-get install -y " + " ".join(self.packages)
        if self.hold:
            line += " && sudo apt-mark hold " + " ".join(self.packages)
        return line

    def prepare(self, host: Host) -> dict[str, Any]:
        return {"installed": [p for p in self.packages if dpkg_installed(host, p)]}

    def apply(self, host: Host, out: Output) -> None:
        if self.update:
            run_checked(host, out, ("apt-get", "update", "-qq"), env=APT_ENV)
        install = ("apt-get", "install", "-y", "--no-install-recommends", *self.packages)
        run_checked(host, out, install, env=APT_ENV)
        if self.hold:
            run_checked(host, out, ("apt-mark", "hold", *self.packages))

    def undo(self, host: Host, before: dict[str, Any], purge: bool, out: Output) -> None:
        held = [p for p in self.packages if self.hold and dpkg_installed(host, p)]
        if held:  # an install that failed (a broken mirror) held nothing; apt-mark would fail
            run_checked(host, out, ("apt-mark", "unhold", *held))
        ours = [p for p in self.packages if p not in before.get("installed", [])]
        if purge and ours:
            run_checked(host, out, ("apt-get", "purge", "-y", *ours), env=APT_ENV)


def _unit_state(host: Host, verb: str, unit: str) -> str:
    result = host.run(("systemctl", verb, unit))
    return result.stdout.strip() or "unknown"


@dataclass(frozen=True)
class EnableUnit(Action):
    """``systemctl enable [--now]``; reset disables it unless it was enabled before."""

    kind: ClassVar[str] = "enable-unit"
    unit: str
    now: bool = True

    def describe(self) -> str:
        return f"enable{' and start' if self.now else ''} {self.unit}"

    def as_shell(self) -> str:
        return f"sudo systemctl enable {'--now ' if self.now else ''}{self.unit}"

    def prepare(self, host: Host) -> dict[str, Any]:
        return {"enabled": _unit_state(host, "is-enabled", self.unit)}

    def apply(self, host: Host, out: Output) -> None:
        argv = ("systemctl", "enable", "--now", self.unit) if self.now else (
            "systemctl", "enable", self.unit
        )  # fmt: skip
        run_checked(host, out, argv)

    def undo(self, host: Host, before: dict[str, Any], purge: bool, out: Output) -> None:
        if before.get("enabled") != "enabled":
            argv = ("systemctl", "disable", "--now", self.unit) if self.now else (
                "systemctl", "disable", self.unit
            )  # fmt: skip
            run_checked(host, out, argv)


@dataclass(frozen=True)
class RestartUnit(Action):
    """``systemctl restart``: a service reads the config join wrote (and, after reset, the
    config it had before)."""

    kind: ClassVar[str] = "restart-unit"
    unit: str

    def describe(self) -> str:
        return f"restart {self.unit}"

    def as_shell(self) -> str:
        return f"sudo systemctl restart {self.unit}"

    def apply(self, host: Host, out: Output) -> None:
        run_checked(host, out, ("systemctl", "restart", self.unit))

    def after_restore(self, host: Host, out: Output) -> None:
        if _unit_state(host, "is-active", self.unit) == "active":
            run_checked(host, out, ("systemctl", "restart", self.unit))


@dataclass(frozen=True)
class Manual(Action):
    """What join will not do by itself: it stops here and says what a person must do.

    ``command``: the instruction is a command a person pastes (doctor's remedy); otherwise
    it is words, and ``as_shell`` makes it comment lines, so a script of fixes stays shell.
    """

    kind: ClassVar[str] = "manual"
    instruction: str
    command: bool = False

    def describe(self) -> str:
        return f"needs a person: {self.instruction}"

    def as_shell(self) -> str:
        if self.command:
            return self.instruction
        return "\n".join(f"# {line}".rstrip() for line in self.instruction.splitlines())

    def apply(self, host: Host, out: Output) -> None:
        out.note(f"needs a person: {self.instruction}")  # the log join's error names
        raise ActionFailed(f"this step needs a person: {self.instruction}")

    def finish(self, host: Host, out: Output) -> None:
        """The step's check passes now: the person did it."""
        out.note(f"done by a person since: {self.instruction}")


@dataclass(frozen=True)
class Deferred(Manual):
    """A step join can plan only once the steps before it have run: containerd's config
    starts from the installed containerd's own defaults and uses the toolkit's nvidia-ctk.

    A real join plans every step just before it runs it, so it meets one only when an
    earlier step it needs was skipped or left to a person; then it stops like
    :class:`Manual`. A dry run and doctor show it; doctor's fix is ``join --only STEP``.
    """

    kind: ClassVar[str] = "deferred"
    join_only: ClassVar[bool] = True

    def describe(self) -> str:
        return f"planned once the steps before it have run: {self.instruction}"


@dataclass(frozen=True)
class InstallDriver(Action):
    """``ubuntu-drivers install nvidia:BRANCH``: the driver packages Ubuntu builds for this
    kernel (signed prebuilt modules where it has them, DKMS otherwise).

    ubuntu-drivers exits 0 even when it installed nothing (no such branch for this GPU, or
    apt failed: its click command drops the status), so apply checks that ``package`` is
    installed afterwards. ``--package-list`` makes it write what it installed, which is
    exactly what ``reset --purge`` removes (it skips what was installed already). It also
    writes files outside dpkg (``files``: /lib/modprobe.d/nvidia-kms.conf), which the
    journal backs up like the list.
    """

    kind: ClassVar[str] = "install-driver"
    driver: str  # "nvidia:535", as ubuntu-drivers spells it
    package: str  # "nvidia-driver-535": what must be installed afterwards
    package_list: str
    files: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"install the NVIDIA driver {self.driver} (ubuntu-drivers)"

    def _argv(self) -> tuple[str, ...]:
        return ("ubuntu-drivers", "install", "--package-list", self.package_list, self.driver)

    def as_shell(self) -> str:
        """The seed's command: the package list is join's record for ``reset --purge``,
        and a person has no journal (nor, on a fresh host, its directory) to keep it in."""
        return f"sudo ubuntu-drivers install {shlex.quote(self.driver)}"

    def touches(self) -> tuple[str, ...]:
        return (self.package_list, *self.files)

    def apply(self, host: Host, out: Output) -> None:
        run_checked(host, out, self._argv(), env=APT_ENV)
        if dpkg_installed(host, self.package):
            return
        offered = host.run(("ubuntu-drivers", "list"), timeout=300.0)
        out.command(offered)
        names = [n for n in (line.split(",")[0].strip() for line in offered.stdout.splitlines())
                 if n.startswith("nvidia-driver-")]  # fmt: skip
        raise ActionFailed(
            f"`ubuntu-drivers install {self.driver}` exited 0 but installed no {self.package}; "
            + (f"the NVIDIA drivers it offers here: {', '.join(names)}" if names else
               "it offers no NVIDIA driver here (is the GPU on the PCI bus? lspci -nn | grep -i "
               "nvidia)")
        )  # fmt: skip

    def undo(self, host: Host, before: dict[str, Any], purge: bool, out: Output) -> None:
        if not purge:
            return
        listed = dict.fromkeys((host.read_text(self.package_list) or "").split())
        ours = [p for p in listed if dpkg_installed(host, p)]
        if ours:
            run_checked(host, out, ("apt-get", "purge", "-y", *ours), env=APT_ENV)


@dataclass(frozen=True)
class Reboot(Action):
    """Where join stops for a reboot (a new kernel module loads only at boot).

    Applying it raises :class:`RebootRequired`; join records it as done and ends with exit
    status 0 and the instruction. The next join (the resume unit's, or a person's) finds
    the steps before it met and continues after it.
    """

    kind: ClassVar[str] = "reboot"
    reason: str

    def describe(self) -> str:
        return f"stop here for a reboot ({self.reason})"

    def as_shell(self) -> str:
        return "sudo reboot"

    def apply(self, host: Host, out: Output) -> None:
        out.note(f"join stops here for a reboot: {self.reason}")
        raise RebootRequired(self.reason)

    def finish(self, host: Host, out: Output) -> None:
        """The step's check passes now: the host has rebooted since."""
        out.note(f"rebooted since: {self.reason}")
