"""The node daemon's mTLS API (the seed README's final check: ``curl -k https://localhost:8444/health``).

Unlike ``curl -k``, this check verifies the daemon's certificate against the hub CA and
presents the node's own client certificate, so it proves the same mTLS path the hub uses.
The daemon's certificate names the node id, not "localhost", so the chain is verified but
the host name is not.

Join installs and enables the daemon's unit, ``worldland-node.service`` (Restart=always),
which runs ``worldland daemon`` from the very ``worldland`` that joined. A ``worldland``
without that command yet (the daemon ships on its own) gets the unit all the same, and the
check says so as a warning instead of failing: the unit starts the daemon once an upgrade
brings it.
"""

from __future__ import annotations

import http.client
import shlex
import ssl
from urllib.parse import urlsplit

from worldland_cli import config
from worldland_cli.host import Host
from worldland_cli.join.actions import Action, EnableUnit, Manual, WriteFile, sha256_text
from worldland_cli.requirements.base import Finding, JoinSettings, Requirement, Status
from worldland_cli.requirements.kube import KUBELET_CONF

DAEMON_DOC = "provider-guide#node-daemon"
DEFAULT_URL = "https://localhost:8444/health"
# One unit name everywhere: doctor's remedies, diag's journals, the support bundle, join.
DAEMON_UNIT = "worldland-node.service"
UNIT_PATH = f"/etc/systemd/system/{DAEMON_UNIT}"
RESTART_REMEDY = f"sudo systemctl restart {DAEMON_UNIT} && journalctl -u {DAEMON_UNIT} -n 50"
JOIN_REMEDY = (
    f"sudo worldland join --yes --only daemon.health   # installs and enables {DAEMON_UNIT}"
)


class DaemonHealth(Requirement):
    id = "daemon.health"
    title = "node daemon answers on its mTLS API"

    def __init__(
        self, url: str = DEFAULT_URL, cert_dir: str | None = None, *, joining: bool = False
    ) -> None:
        """``cert_dir`` is the configured one (:meth:`worldland_cli.config.Config.cert_dir`,
        a path of the managed system); without it, the default. ``url`` is for tests.
        ``joining``: a unit not installed or not enabled is join's to fix (a failure)."""
        self.url = url
        self.cert_dir = cert_dir or str(config.default_cert_dir())
        self.joining = joining

    def _context(self, host: Host, cert_dir: str) -> ssl.SSLContext:
        ca = host.read_text(f"{cert_dir}/ca.crt")
        if ca is None:
            ctx = ssl._create_unverified_context()  # like the seed's curl -k before certs exist
        else:
            ctx = ssl.create_default_context(cadata=ca)
            ctx.check_hostname = False
        if host.exists(f"{cert_dir}/node.crt") and host.exists(f"{cert_dir}/node.key"):
            ctx.load_cert_chain(
                str(host.path(f"{cert_dir}/node.crt")), str(host.path(f"{cert_dir}/node.key"))
            )
        return ctx

    def check(self, host: Host) -> Finding:
        unit = host.read_text(UNIT_PATH)
        if self.joining:
            if unit is None:
                return self.fail(f"{DAEMON_UNIT} is not installed", JOIN_REMEDY, DAEMON_DOC)
            state = host.run(["systemctl", "is-enabled", DAEMON_UNIT]).stdout.strip()
            if state != "enabled":
                enable = f"sudo systemctl enable {DAEMON_UNIT}"
                return self.fail(f"{DAEMON_UNIT} is {state or 'not enabled'}", enable, DAEMON_DOC)
        elif not host.exists(KUBELET_CONF) and not host.exists(f"{self.cert_dir}/node.crt"):
            return self.skip(
                f"not joined yet: no {KUBELET_CONF} or {self.cert_dir}/node.crt "
                "(worldland join starts the daemon)"
            )
        finding = self._probe(host)
        if finding.status is not Status.FAIL:
            return finding
        if unit is None:
            # After `worldland register` alone: a restart of a unit nothing installed would
            # only fail again ("Unit worldland-node.service not found").
            return self.fail(
                f"{finding.observed}; {DAEMON_UNIT} is not installed, so nothing runs the "
                "daemon (`worldland daemon` runs it in the foreground)",
                JOIN_REMEDY,
                DAEMON_DOC,
            )
        missing = daemon_missing(host, exec_program(unit))
        if missing is None and self.joining:
            # Join's part is the unit, installed and enabled; a daemon that does not answer
            # yet (still starting, or waiting for the cluster) is systemd's to restart and
            # doctor's to report, not a reason to call the whole join failed.
            return self.warn(
                f"{DAEMON_UNIT} is installed and enabled, but {finding.observed}",
                RESTART_REMEDY,
            )
        if missing is None:
            return finding
        return self.warn(
            f"{DAEMON_UNIT} is installed, but the daemon itself is not available yet: "
            f"{missing}; the unit starts it once worldland is upgraded to a release with it",
            f"after the upgrade: {RESTART_REMEDY}",
        )

    def plan(self, host: Host, finding: Finding, settings: JoinSettings) -> list[Action]:
        """The unit (ExecStart: this worldland's ``daemon``), daemon-reload, enable.

        Enabled without ``--now`` while the daemon command does not exist yet: starting it
        would only make systemd restart a failing program every five seconds.
        """
        from worldland_cli.join.units import DaemonReload
        from worldland_cli.templating import render

        text = render(
            "worldland-node.service",
            executable=shlex.quote(settings.worldland),
            home=str(config.home()),
        )
        current = host.read_text(UNIT_PATH)
        actions: list[Action] = []
        if current != text:
            actions += [WriteFile(UNIT_PATH, text, 0o644, sha256_text(current)), DaemonReload()]
        enabled = host.run(["systemctl", "is-enabled", DAEMON_UNIT]).stdout.strip() == "enabled"
        if actions or not enabled:
            now = daemon_missing(host, settings.worldland) is None
            actions.append(EnableUnit(DAEMON_UNIT, now=now))
        return actions or [Manual(finding.remedy or RESTART_REMEDY, command=True)]

    def _probe(self, host: Host) -> Finding:
        cert_dir = self.cert_dir
        parts = urlsplit(self.url)
        try:
            ctx = self._context(host, cert_dir)
        except (ssl.SSLError, OSError) as e:
            return self.fail(f"cannot load certificates from {cert_dir}: {e}", None, DAEMON_DOC)
        conn = http.client.HTTPSConnection(
            parts.hostname or "localhost",
            parts.port or 443,
            context=ctx,
            timeout=host.default_timeout,
        )
        try:
            conn.request("GET", parts.path or "/")
            resp = conn.getresponse()
            body = resp.read(512).decode(errors="replace").strip()
        except ssl.SSLError as e:
            return self.fail(f"{self.url}: TLS failed: {e.reason or e}", RESTART_REMEDY, DAEMON_DOC)
        except OSError as e:
            return self.fail(
                f"{self.url}: {e.strerror or type(e).__name__}", RESTART_REMEDY, DAEMON_DOC
            )
        finally:
            conn.close()
        if resp.status != 200:
            return self.fail(
                f"{self.url} answered {resp.status}: {body[:120]}", RESTART_REMEDY, DAEMON_DOC
            )
        return self.ok(f"{self.url} answered 200: {body[:120]}")


def exec_program(unit_text: str) -> str | None:
    """The program a unit's ``ExecStart=`` runs (systemd's quoting is the shell's here)."""
    for line in unit_text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "ExecStart" and value.strip():
            try:
                words = shlex.split(value)
            except ValueError:
                return None
            return words[0].lstrip("-@:+!") if words else None
    return None


def daemon_missing(host: Host, program: str | None) -> str | None:
    """Why ``PROGRAM daemon`` cannot run, or None when it can (its ``--help`` answers)."""
    if program is None:
        return f"{DAEMON_UNIT} names no program to run"
    result = host.run([program, "daemon", "--help"])
    if result.ok:
        return None
    if result.not_found:
        return f"{program} is not there"
    return f"`{program} daemon` is not a command of this worldland ({result.describe_failure()})"
