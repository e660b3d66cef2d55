"""The node daemon's mTLS API (the seed README's final check: ``curl -k https://localhost:8444/health``).

Unlike ``curl -k``, this check verifies the daemon's certificate against the hub CA and
presents the node's own client certificate, so it proves the same mTLS path the hub uses.
The daemon's certificate names the node id, not "localhost", so the chain is verified but
the host name is not.
"""

from __future__ import annotations

import http.client
import ssl
from urllib.parse import urlsplit

from worldland_cli import config
from worldland_cli.host import Host
from worldland_cli.requirements.base import Finding, Requirement
from worldland_cli.requirements.kube import KUBELET_CONF

DAEMON_DOC = "docs/provider-guide.md#node-daemon"
DEFAULT_URL = "https://localhost:8444/health"
# One unit name everywhere: doctor's remedies, diag's journals, the support bundle, join.
DAEMON_UNIT = "worldland-node.service"
RESTART_REMEDY = f"sudo systemctl restart {DAEMON_UNIT} && journalctl -u {DAEMON_UNIT} -n 50"


class DaemonHealth(Requirement):
    id = "daemon.health"
    title = "node daemon answers on its mTLS API"

    def __init__(self, url: str = DEFAULT_URL, cert_dir: str | None = None) -> None:
        """``cert_dir`` is the configured one (:meth:`worldland_cli.config.Config.cert_dir`,
        a path of the managed system); without it, the default. ``url`` is for tests."""
        self.url = url
        self.cert_dir = cert_dir or str(config.default_cert_dir())

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
        cert_dir = self.cert_dir
        if not host.exists(KUBELET_CONF) and not host.exists(f"{cert_dir}/node.crt"):
            return self.skip(
                f"not joined yet: no {KUBELET_CONF} or {cert_dir}/node.crt "
                "(worldland join starts the daemon)"
            )
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
