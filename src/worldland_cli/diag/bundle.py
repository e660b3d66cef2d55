"""`diag bundle`: one redacted tar.gz that holds everything support needs, and no secret.

Three rules make it safe to attach to a ticket:

* only files support needs are collected, each named (``SYSTEM_FILES``, ``HOME_FILES``): a
  file someone left in WORLDLAND_HOME (a hub admin token, a seed phrase) is never read;
* files that *are* secrets (wallet key, session token, TLS and WireGuard private keys) are
  never opened for the archive: :func:`never_bundled` refuses them by name before any read;
* every member passes through the :class:`~worldland_cli.diag.redact.Redactor`, JSON
  members string by string and then as text, and ``redactions.json`` says what kind of
  secret was removed from which member and how many times, never the value;
* the archive is produced even when probes fail or hang: a failed probe becomes a member
  that says why, and a size cap keeps a runaway log from making it unsendable.
"""

from __future__ import annotations

import io
import json
import platform
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import PurePosixPath
from typing import Any

from worldland_cli import __version__
from worldland_cli.config import CERTS_NAME, CONFIG_NAME, NODE_NAME, PRIVATE_KEY_NAME, SESSION_NAME
from worldland_cli.deadline import Outcome, run_all, run_one
from worldland_cli.diag.base import DiagReport
from worldland_cli.diag.gpu import nvidia_kernel_lines
from worldland_cli.diag.k8s import journal
from worldland_cli.diag.redact import Redactor
from worldland_cli.host import Host
from worldland_cli.join.actions import state_dir
from worldland_cli.requirements.daemon import DAEMON_UNIT

MAX_MEMBER_BYTES = 2 * 1024 * 1024
MAX_TOTAL_BYTES = 16 * 1024 * 1024
LOG_UNITS = ("kubelet", "containerd", DAEMON_UNIT.removesuffix(".service"), "wg-quick@wg0")
SECRET_NAMES = frozenset(
    {PRIVATE_KEY_NAME, SESSION_NAME, "privatekey", "presharedkey", "admin-token"}
)
SECRET_SUFFIXES = (".key", ".pem", ".p12", ".pfx")
SYSTEM_FILES = (
    "/etc/os-release",
    "/etc/containerd/config.toml",
    "/etc/containerd/conf.d/*.toml",
    "/var/lib/kubelet/config.yaml",
    "/etc/default/kubelet",
    "/etc/kubernetes/kubelet.conf",
    "/etc/wireguard/wg0.conf",
    "/etc/cni/net.d/*",
)
# What support reads from WORLDLAND_HOME, by name: the settings, the node's id and hub, and
# the public certificates. Never the whole folder: anything else a person keeps there is
# theirs (the session, the wallet key and node.key are also refused by name).
HOME_FILES = (CONFIG_NAME, NODE_NAME, f"{CERTS_NAME}/node.crt", f"{CERTS_NAME}/ca.crt")
# join's journal and what each step printed, current and after each reset; never its
# backups/, which hold copies of the host's own files as they were.
JOIN_FILES = ("steps.jsonl", "logs/*")
VERSION_COMMANDS = (
    ("uname", "-a"),
    ("nvidia-smi", "--version"),
    ("nvidia-ctk", "--version"),
    ("containerd", "--version"),
    ("kubelet", "--version"),
    ("kubeadm", "version", "-o", "short"),
    ("wg", "--version"),
)


def never_bundled(system_path: str) -> bool:
    """Files that are secrets as a whole; the bundle does not even open them.

    ``.pem`` is on the list because kubelet's client certificate file
    (kubelet-client-current.pem) holds its private key too.
    """
    name = PurePosixPath(system_path).name.lower()
    return name in SECRET_NAMES or name.endswith(SECRET_SUFFIXES) or "private" in name


@dataclass
class Bundle:
    """What went into the archive; the archive's bytes are in ``data``."""

    data: bytes = b""
    members: dict[str, int] = field(default_factory=dict)
    truncated: list[str] = field(default_factory=list)
    omitted: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    redactions: list[dict[str, object]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "worldland.diag.bundle/v1",
            "version": __version__,
            "size_bytes": len(self.data),
            "members": self.members,
            "truncated": self.truncated,
            "omitted": self.omitted,
            "refused_secret_files": self.refused,
            "problems": self.problems,
            "redactions": self.redactions,
        }


def _problem(outcome: Outcome[Any], limit: float) -> str | None:
    """Why a probe has no result (it raised, or ran past ``limit``), or None when it has one."""
    if not outcome.finished:
        return f"no answer within {limit:g}s (timed out); abandoned"
    if outcome.error is not None:
        return f"{type(outcome.error).__name__}: {outcome.error}"
    return None


def _tokens(doc: Any) -> Iterator[str]:
    """Every ``token`` in session.json, whichever of its formats (one session, or per hub)."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "token" and isinstance(value, str):
                yield value
            else:
                yield from _tokens(value)


def _known_secrets(host: Host, home: str, redactor: Redactor) -> None:
    """Learn the secret values themselves so they are scrubbed in any shape of text.

    These files are read into memory only to know what to erase; they are never archived.
    """
    session = host.read_text(f"{home}/{SESSION_NAME}")
    if session:
        try:
            doc = json.loads(session)
        except ValueError:
            doc = {}
        redactor.add_known("session-token", list(_tokens(doc)))
    wallet = host.read_text(f"{home}/{PRIVATE_KEY_NAME}")
    if wallet:
        redactor.add_known("wallet-key", [wallet, wallet.strip().removeprefix("0x")])
    wg = host.read_text("/etc/wireguard/wg0.conf") or ""
    keys = [
        ln.split("=", 1)[1]
        for ln in wg.splitlines()
        if ln.strip().lower().startswith(("privatekey", "presharedkey")) and "=" in ln
    ]
    redactor.add_known("wireguard-private-key", keys)


class _Writer:
    """Adds members to the tar under the size caps, redacting each on the way in."""

    def __init__(
        self,
        tar: tarfile.TarFile,
        redactor: Redactor,
        bundle: Bundle,
        max_member: int,
        max_total: int,
    ) -> None:
        self.tar, self.redactor, self.bundle = tar, redactor, bundle
        self.max_member, self.max_total = max_member, max_total
        self.total = 0
        self.mtime = int(time.time())

    def text(self, member: str, text: str, *, capped: bool = True) -> None:
        self._add(member, self.redactor.redact(member, text), capped=capped)

    def json(self, member: str, doc: Any, *, capped: bool = True) -> None:
        """Redacted as JSON, value by value, so it stays JSON (never as text: see redact)."""
        clean = self.redactor.redact_json(member, json.loads(json.dumps(doc, default=str)))
        self._add(member, json.dumps(clean, indent=2) + "\n", capped=capped)

    def raw(self, member: str, text: str) -> None:
        """Members this module wrote itself and that hold no host data (the manifests).

        Never dropped for the total cap: they are what tells support that something was
        cut or omitted, so an archive filled by a runaway log needs them most.
        """
        self._add(member, text, capped=False)

    def _add(self, member: str, text: str, *, capped: bool = True) -> None:
        data = text.encode("utf-8", errors="replace")
        if len(data) > self.max_member:
            dropped = len(data) - self.max_member
            # Logs matter most at their end, so the head is what gets dropped.
            data = f"[truncated: first {dropped} bytes dropped]\n".encode() + data[dropped:]
            self.bundle.truncated.append(member)
        if capped and self.total + len(data) > self.max_total:
            self.bundle.omitted.append(member)
            return
        info = tarfile.TarInfo(f"worldland-bundle/{member}")
        info.size, info.mtime, info.mode = len(data), self.mtime, 0o600
        self.tar.addfile(info, io.BytesIO(data))
        self.total += len(data)
        self.bundle.members[member] = len(data)


def build_bundle(
    host: Host,
    home: str,
    *,
    timeout: float = 5.0,
    probes: dict[str, Callable[[], DiagReport]] | None = None,
    max_member: int = MAX_MEMBER_BYTES,
    max_total: int = MAX_TOTAL_BYTES,
) -> Bundle:
    """Collect, redact and pack; ``probes`` replaces the default diag probes (tests use it)."""
    bundle = Bundle()
    redactor = Redactor()
    _known_secrets(host, home, redactor)
    probe_limit = timeout * 8
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        w = _Writer(tar, redactor, bundle, max_member, max_total)

        def doctor() -> dict[str, Any]:
            from worldland_cli import config
            from worldland_cli.requirements import all_requirements
            from worldland_cli.requirements.runner import run_checks

            checks = all_requirements(cert_dir=config.load().cert_dir())
            return run_checks(host, checks, timeout=timeout).to_dict()

        # Every probe runs at once so the bundle takes as long as the slowest, not the sum.
        jobs: dict[str, Callable[[], Any]] = {"doctor.json": doctor}
        chosen = probes if probes is not None else _default_probes(host, timeout)
        for name, probe in chosen.items():
            jobs[f"diag/{name}.json"] = probe
        for member, outcome in run_all(jobs, probe_limit, name="bundle").items():
            problem = _problem(outcome, probe_limit)
            if problem is not None:
                bundle.problems[member] = problem
                w.json(member, {"error": problem})
            else:
                value = outcome.value
                w.json(member, value.to_dict() if isinstance(value, DiagReport) else value)

        w.text("versions.txt", _versions(host, timeout))
        for unit in LOG_UNITS:
            read = run_one(partial(journal, host, unit, timeout, 5000), timeout + 1, name=unit)
            problem = _problem(read, timeout + 1)
            if problem:
                bundle.problems[f"logs/{unit}.log"] = problem
            w.text(f"logs/{unit}.log", "\n".join(read.value or []) + "\n")
        kernel, why = nvidia_kernel_lines(host, timeout)
        w.text("dmesg-nvidia.txt", "\n".join(kernel) + "\n" if not why else f"({why})\n")

        state = state_dir()
        journals = (f"{state}/{d}/{f}" for d in ("join", "join.reset-*") for f in JOIN_FILES)
        for pattern in (*SYSTEM_FILES, *(f"{home}/{p}" for p in HOME_FILES), *journals):
            for path in host.glob(pattern) if "*" in pattern else [pattern]:
                if never_bundled(path):
                    bundle.refused.append(path)
                    continue
                if host.is_dir(path):
                    continue
                try:
                    text = host.read_text(path)
                except OSError as e:
                    bundle.problems[path] = str(e)
                    continue
                if text is not None:
                    w.text("files" + path, text)

        # Probe errors can quote host data, so the manifest is redacted like any member;
        # redactions.json goes last so that it counts the manifest's redactions too.
        w.json("manifest.json", _manifest(host, bundle), capped=False)
        bundle.redactions = redactor.manifest()
        w.raw("redactions.json", json.dumps(bundle.redactions, indent=2) + "\n")
    bundle.data = buf.getvalue()
    return bundle


def _default_probes(host: Host, timeout: float) -> dict[str, Callable[[], Any]]:
    from worldland_cli import config
    from worldland_cli.diag.certs import probe_certs
    from worldland_cli.diag.gpu import probe_gpu
    from worldland_cli.diag.k8s import probe_k8s
    from worldland_cli.diag.network import probe_network
    from worldland_cli.hubclient import HubEndpoint

    # Settings are read inside each probe, so a broken config.toml is recorded as that
    # probe's failure instead of stopping the bundle.
    def network() -> Any:
        cfg = config.load()
        endpoint = HubEndpoint.from_config(cfg)
        return probe_network(
            host, cfg.cert_dir(), endpoint.url.rstrip("/"), timeout, hub_ca=endpoint.ca_file
        )

    return {
        "gpu": lambda: probe_gpu(host, timeout),
        "network": network,
        "k8s": lambda: probe_k8s(host, timeout),
        "certs": lambda: probe_certs(host, config.load().cert_dir()),
    }


def _versions(host: Host, timeout: float) -> str:
    lines = [f"worldland {__version__}", f"python {platform.python_version()}"]
    for argv in VERSION_COMMANDS:
        res = host.run(argv, timeout=timeout)
        out = (res.stdout or res.stderr).strip() if res.ok else res.describe_failure()
        lines.append(f"$ {' '.join(argv)}\n{out}")
    return "\n".join(lines) + "\n"


def _manifest(host: Host, bundle: Bundle) -> dict[str, Any]:
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "hostname": host.hostname(),
        "worldland": __version__,
        "members": bundle.members,
        "truncated": bundle.truncated,
        "omitted": bundle.omitted,
        "refused_secret_files": bundle.refused,
        "problems": bundle.problems,
    }
