"""The journal: what join did to this host, in order, with a copy of every file it changed.

certbot's reverter is the model, with one ordered log instead of its separate lists (which,
its own docs warn, cannot keep order). Under the state directory (``/var/lib/worldland``,
moved by ``WORLDLAND_STATE``; under ``--root`` it lives inside the root)::

    join/steps.jsonl        one JSON line per event, fsynced before the next step runs
    join/backups/NNNN-NAME  a file's bytes as they were before join first touched it
    join/logs/NNNN-STEP.log what each action's commands printed
    join/lock               held while a join or reset runs

A line ``begin`` is written (after the backups) before an action runs and ``done`` or
``failed`` after it: an action with ``begin`` and nothing else was cut short, and is run
again by the next join (actions are idempotent) or undone by reset. The ``begin`` of a
step's first action also holds the step's whole plan: a step whose planned actions are not
all done was cut short (or failed) between two of them, and the next join finishes it even
when the step's check passes already (containerd's config written, containerd not yet
restarted: the check reads only the file). A line ``facts``, in between, holds what an
action learnt while it ran and its undo needs (the node id the hub gave): written the
moment it is known, so even a join cut short right after can be undone.
Only the first change to a path is backed up, so reset restores the host as it was before
the first join, byte for byte, with its mode and owner, and removes files and the
directories they needed that did not exist. A reset that completes moves the journal aside
(``join.reset-TIMESTAMP``), where the support bundle still finds it.
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from worldland_cli.host import Host, HostError
from worldland_cli.join import kinds  # noqa: F401  (registers the kinds it reads back)
from worldland_cli.join.actions import STATE_DIR, Action


@dataclass(frozen=True)
class Backup:
    """What a path was before join first changed it; ``stored`` names the saved bytes."""

    path: str
    kind: str  # "file", "link", "dir" or "absent"
    stored: str | None = None
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    link_target: str | None = None
    created_dirs: tuple[str, ...] = ()  # parents that did not exist either, outermost first


@dataclass
class Entry:
    """One action as the journal knows it."""

    seq: int
    step: str
    action: Action
    before: dict[str, Any]
    backups: list[Backup]
    state: str = "begun"  # begun | done | failed
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    plan: tuple[Action, ...] = ()  # the step's actions, on the entry of its first


class Journal:
    """The ordered log of one host's join, read and appended through ``host``."""

    def __init__(self, host: Host, state: str = STATE_DIR) -> None:
        self.host = host
        self.directory = posixpath.join(state, "join")
        self.steps_file = posixpath.join(self.directory, "steps.jsonl")
        self.lock_file = posixpath.join(self.directory, "lock")

    # --------------------------------------------------------------------------- reading

    def entries(self) -> list[Entry]:
        """Every action recorded, in order; a last line cut off by a crash is ignored."""
        text = self.host.read_text(self.steps_file) or ""
        by_seq: dict[int, Entry] = {}
        for line in text.splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue  # only the very last append can be torn
            seq = int(doc["seq"])
            if doc["event"] == "begin":
                by_seq[seq] = Entry(
                    seq=seq,
                    step=str(doc["step"]),
                    action=Action.from_json(doc["action"]),
                    before=dict(doc.get("before") or {}),
                    backups=[_backup(b) for b in doc.get("backups", [])],
                    plan=tuple(Action.from_json(a) for a in doc.get("plan", [])),
                )
            elif seq in by_seq and doc["event"] == "facts":
                by_seq[seq].extra.update(doc.get("facts") or {})
            elif seq in by_seq:
                by_seq[seq].state = str(doc["event"])
                by_seq[seq].error = doc.get("error")
        return [by_seq[s] for s in sorted(by_seq)]

    def unfinished(self) -> dict[str, tuple[Action, ...]]:
        """Per step, what its last run planned and has not done yet, in order.

        A run starts at the entry holding its plan; each entry of the step after that which
        did the next planned action moves it on (a retry of a failed action too). A step
        whose last run did everything is absent.
        """
        runs: dict[str, tuple[tuple[Action, ...], int]] = {}
        for entry in self.entries():
            if entry.plan:
                runs[entry.step] = (entry.plan, 0)
            if entry.step not in runs or entry.state != "done":
                continue
            plan, done = runs[entry.step]
            if done < len(plan) and entry.action == plan[done]:
                runs[entry.step] = (plan, done + 1)
        return {step: plan[done:] for step, (plan, done) in runs.items() if done < len(plan)}

    def originals(self) -> dict[str, Backup]:
        """The first backup of every path: the host before join."""
        first: dict[str, Backup] = {}
        for entry in self.entries():
            for backup in entry.backups:
                first.setdefault(backup.path, backup)
        return first

    def log_path(self, entry: Entry) -> str:
        name = re.sub(r"[^A-Za-z0-9._-]", "_", entry.step)
        return posixpath.join(self.directory, "logs", f"{entry.seq:04d}-{name}.log")

    # --------------------------------------------------------------------------- writing

    def begin(
        self, step: str, action: Action, before: dict[str, Any], plan: Sequence[Action] = ()
    ) -> Entry:
        """Back up what ``action`` touches (first time only), then record that it starts;
        ``plan``, with a step's first action: all the actions the step is about to take."""
        known = self.originals()
        entries = self.entries()
        seq = entries[-1].seq + 1 if entries else 1
        backups = [self._backup(seq, path) for path in action.touches() if path not in known]
        entry = Entry(seq, step, action, before, backups, plan=tuple(plan))
        doc: dict[str, Any] = {
            "seq": seq,
            "event": "begin",
            "step": step,
            "action": action.to_json(),
            "before": before,
            "backups": [asdict(b) for b in backups],
        }
        if plan:
            doc["plan"] = [a.to_json() for a in plan]
        self._append(doc)
        return entry

    def remember(self, entry: Entry, facts: dict[str, Any]) -> None:
        """Record facts an action learnt while it ran, for its undo (``Output.remember``)."""
        entry.extra.update(facts)
        self._append({"seq": entry.seq, "event": "facts", "facts": facts})

    def finish(self, entry: Entry, error: str | None = None) -> None:
        entry.state = "done" if error is None else "failed"
        entry.error = error
        doc: dict[str, Any] = {"seq": entry.seq, "event": entry.state}
        if error is not None:
            doc["error"] = error
        self._append(doc)

    def _append(self, doc: dict[str, Any]) -> None:
        doc["at"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.host.append(self.steps_file, json.dumps(doc, sort_keys=True) + "\n")

    def _backup(self, seq: int, path: str) -> Backup:
        found = self.host.stat(path)
        if found is None:
            return Backup(path, "absent", created_dirs=self._absent_parents(path))
        if found.kind == "link":
            target = self.host.readlink(path)
            return Backup(path, "link", None, found.mode, found.uid, found.gid, target)
        if found.kind != "file":
            return Backup(path, found.kind, None, found.mode, found.uid, found.gid)
        data = self.host.read_bytes(path)
        stored = f"{seq:04d}-{posixpath.basename(path)}"
        if data is None:
            raise HostError(f"{path} vanished while join backed it up")
        self.host.write_atomic(posixpath.join(self.directory, "backups", stored), data, 0o600)
        return Backup(path, "file", stored, found.mode, found.uid, found.gid)

    def _absent_parents(self, path: str) -> tuple[str, ...]:
        missing: list[str] = []
        parent = posixpath.dirname(path)
        while parent != "/" and self.host.stat(parent) is None:
            missing.append(parent)
            parent = posixpath.dirname(parent)
        return tuple(reversed(missing))

    # --------------------------------------------------------------------------- restoring

    def restore(self, backup: Backup) -> None:
        """Put one path back as it was before join (content, mode, owner; or remove it)."""
        host = self.host
        if backup.kind == "absent":
            host.remove_tree(backup.path)
            for directory in reversed(backup.created_dirs):
                if host.is_dir(directory) and not host.listdir(directory):
                    host.remove_tree(directory)
            return
        if backup.kind == "file" and backup.stored is not None:
            data = host.read_bytes(posixpath.join(self.directory, "backups", backup.stored))
            if data is None:
                raise HostError(f"the backup of {backup.path} is missing from the journal")
            current = host.stat(backup.path)
            if current is not None and current.kind != "file":
                host.remove_tree(backup.path)
            host.write_atomic(backup.path, data, backup.mode or 0o644)
        elif backup.kind == "link" and backup.link_target is not None:
            host.remove_tree(backup.path)
            host.symlink(backup.link_target, backup.path)
        if backup.uid is not None and backup.gid is not None:
            host.chown(backup.path, backup.uid, backup.gid)
        if backup.kind == "file" and backup.mode is not None:
            host.chmod(backup.path, backup.mode)

    def close(self) -> str:
        """After a complete reset: move the journal aside, where support still finds it."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        aside, n = f"{self.directory}.reset-{stamp}", 1
        while self.host.exists(aside):  # two resets within one second
            n += 1
            aside = f"{self.directory}.reset-{stamp}-{n}"
        self.host.rename(self.directory, aside)
        return aside


def _backup(doc: dict[str, Any]) -> Backup:
    values = dict(doc)
    values["created_dirs"] = tuple(values.get("created_dirs") or ())
    return Backup(**values)
