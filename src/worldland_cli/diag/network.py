"""`diag network`: the hub step by step, the mTLS path, clock skew, WireGuard, node API, MTU.

"Node online but never rented" is most often one of these layers, and knowing which one
failed (name resolution, a firewall eating SYNs, a TLS interception box, a skewed clock that
makes SIWE and certificates fail, a WireGuard tunnel with no recent handshake, an MTU that
stalls large packets) is the whole diagnosis.  Each layer is its own check with a timing.

Why one module of about 450 lines: the layers are probed in order and each one's verdict
decides whether the next is worth trying (no TCP, no TLS; no TLS, no mTLS), so they read
best as one sequence, a function per layer.
"""

from __future__ import annotations

import email.utils
import socket
import ssl
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from worldland_cli.diag.base import DiagReport, Finding, bounded, fail, ok, skip, warn
from worldland_cli.host import Host
from worldland_cli.hubclient import hub_ca_context
from worldland_cli.requirements.daemon import DAEMON_UNIT, RESTART_REMEDY

DAEMON_JOURNAL = f"journalctl -u {DAEMON_UNIT} -n 50"

NODE_API = ("127.0.0.1", 8444)
WG_CONF = "/etc/wireguard/wg0.conf"
# WireGuard re-handshakes every 2 minutes while traffic flows; 3 minutes of silence is dead.
HANDSHAKE_STALE_S = 180
SKEW_WARN_S = 5
SKEW_FAIL_S = 60
# WireGuard adds 60 bytes over IPv4 and 80 over IPv6 to every packet.
WG_OVERHEAD = 80
SKEW_REMEDY = "sudo timedatectl set-ntp true && timedatectl timesync-status"
WG_REMEDY = "sudo systemctl restart wg-quick@wg0 && sudo wg show wg0"


@dataclass(frozen=True)
class NodeCerts:
    """Real paths of the node's mTLS files, or None for each that is missing."""

    cert: str | None
    key: str | None
    ca: str | None


def node_certs(host: Host, cert_dir: str) -> NodeCerts:
    def real(name: str) -> str | None:
        p = f"{cert_dir}/{name}"
        return str(host.path(p)) if host.exists(p) else None

    return NodeCerts(real("node.crt"), real("node.key"), real("ca.crt"))


def _ms(start: float) -> int:
    return int((time.monotonic() - start) * 1000)


def _tls_context(certs: NodeCerts, *, client: bool) -> ssl.SSLContext:
    """Verify against the hub CA when we have it (the hub may use its own CA), else the system's.

    Loading the client key happens inside the ssl module, which reads the file itself: the
    key's bytes never pass through this program's memory or output.
    """
    ctx = ssl.create_default_context(cafile=certs.ca) if certs.ca else ssl.create_default_context()
    if client and certs.cert and certs.key:
        ctx.load_cert_chain(certs.cert, certs.key)
    return ctx


def parse_wg_dump(text: str) -> dict[str, Any]:
    """``wg show wg0 dump``: the interface line, then one tab-separated line per peer.

    The interface line starts with the private key; it is dropped here, before anything
    else can see it, so no report can carry it.
    """
    lines = [ln.split("\t") for ln in text.splitlines() if ln.strip()]
    if not lines:
        return {"interface": {}, "peers": []}
    iface = lines[0]
    out: dict[str, Any] = {
        "interface": {
            "public_key": iface[1] if len(iface) > 1 else "",
            "listen_port": iface[2] if len(iface) > 2 else "",
        },
        "peers": [],
    }
    for f in lines[1:]:
        if len(f) < 8:
            continue
        out["peers"].append(
            {
                "public_key": f[0],
                "endpoint": f[2],
                "allowed_ips": f[3],
                "latest_handshake": int(f[4]) if f[4].isdigit() else 0,
                "rx_bytes": int(f[5]) if f[5].isdigit() else 0,
                "tx_bytes": int(f[6]) if f[6].isdigit() else 0,
                "keepalive": f[7],
            }
        )
    return out


def wireguard_check(host: Host, timeout: float, now: float | None = None) -> Finding:
    res = host.run(["wg", "show", "wg0", "dump"], timeout=timeout)
    configured = host.exists(WG_CONF)
    if res.not_found:
        if configured:
            return fail(
                "network.wireguard",
                "wg0.conf exists but wg is not installed",
                "sudo apt-get install -y wireguard-tools",
            )
        return skip("network.wireguard", "WireGuard not installed and no wg0.conf (not joined)")
    if res.timed_out:
        return fail("network.wireguard", res.describe_failure(), WG_REMEDY, timed_out=True)
    if not res.ok:
        if configured:
            return fail(
                "network.wireguard",
                f"wg0 is configured but down: {res.describe_failure()}",
                WG_REMEDY,
            )
        return skip("network.wireguard", "no wg0 interface and no wg0.conf (not joined)")
    dump = parse_wg_dump(res.stdout)
    peers = dump["peers"]
    if not peers:
        return fail("network.wireguard", "wg0 is up but has no peer", "worldland join", **dump)
    clock = time.time() if now is None else now
    worst: Finding | None = None
    notes = []
    for p in peers:
        hs = p["latest_handshake"]
        p["handshake_age_s"] = int(clock - hs) if hs else None
        rxtx = f"rx {p['rx_bytes']} B, tx {p['tx_bytes']} B"
        if not hs:
            notes.append(f"peer {p['endpoint']}: never completed a handshake ({rxtx})")
            worst = worst or fail("network.wireguard", "", WG_REMEDY)
        elif clock - hs > HANDSHAKE_STALE_S:
            notes.append(f"peer {p['endpoint']}: last handshake {int(clock - hs)} s ago ({rxtx})")
            worst = worst or fail("network.wireguard", "", WG_REMEDY)
        else:
            notes.append(f"peer {p['endpoint']}: handshake {int(clock - hs)} s ago ({rxtx})")
    observed = "; ".join(notes)
    if worst:
        hint = f"{WG_REMEDY}   # and check that UDP to the peer endpoint is not blocked"
        return fail("network.wireguard", observed, hint, **dump)
    return ok("network.wireguard", observed, **dump)


def _link_mtus(text: str) -> dict[str, int]:
    """``ip -o link show``: ``2: ens4: <...> mtu 1460 qdisc ...`` per line."""
    mtus = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) > 4 and "mtu" in parts:
            name = parts[1].rstrip(":").split("@")[0]
            mtus[name] = int(parts[parts.index("mtu") + 1])
    return mtus


def mtu_check(host: Host, timeout: float) -> Finding:
    links = host.run(["ip", "-o", "link", "show"], timeout=timeout)
    if not links.ok:
        return skip("network.mtu", f"cannot list links: {links.describe_failure()}")
    mtus = _link_mtus(links.stdout)
    route = host.run(["ip", "-o", "route", "show", "default"], timeout=timeout)
    words = route.stdout.split() if route.ok else []
    uplink = words[words.index("dev") + 1] if "dev" in words else None
    details = {"mtus": mtus, "uplink": uplink}
    if uplink is None or uplink not in mtus:
        return warn("network.mtu", "no default route", "ip route   # is the uplink up?", **details)
    up = mtus[uplink]
    if "wg0" in mtus and mtus["wg0"] + WG_OVERHEAD > up:
        good = up - WG_OVERHEAD
        return warn(
            "network.mtu",
            f"wg0 MTU {mtus['wg0']} + {WG_OVERHEAD} B of WireGuard overhead exceeds {uplink} "
            f"MTU {up}: large packets (image pulls, SSH transfers) will stall",
            f"sudo ip link set dev wg0 mtu {good}   # and put MTU = {good} under [Interface] "
            f"in {WG_CONF}",
            **details,
        )
    note = f"{uplink} MTU {up}" + (f", wg0 MTU {mtus['wg0']}" if "wg0" in mtus else "")
    if up < 1500:
        note += f" (below 1500, as on GCP: keep wg0 at {up - WG_OVERHEAD} or less)"
    return ok("network.mtu", note, **details)


def _tcp_connect(addr: str, port: int, timeout: float) -> float:
    start = time.monotonic()
    with socket.create_connection((addr, port), timeout=timeout):
        return time.monotonic() - start


def probe_network(
    host: Host,
    cert_dir: str,
    hub: str,
    timeout: float = 5.0,
    node_api: tuple[str, int] = NODE_API,
    *,
    hub_ca: str | None = None,
) -> DiagReport:
    """Every layer between this node and the hub, then the local tunnel and node API.

    ``hub_ca`` is the configured trust anchor for a TLS hub (``--hub-ca``); without it the
    node's ca.crt in ``cert_dir`` (the configured one) is used once the node has one, else
    the system's CAs.
    """
    start = time.monotonic()
    report = DiagReport("network", data={"hub": hub})
    url = urlsplit(hub)
    hostname = url.hostname or ""
    https = url.scheme == "https"
    port = url.port or (443 if https else 80)
    certs = node_certs(host, cert_dir)
    if hub_ca:
        if https:
            # A configured CA bundle that is gone is a configuration error (exit 2, naming
            # the file), as for every command that talks to the hub, not a TLS failure.
            hub_ca_context(hub_ca)
        certs = replace(certs, ca=hub_ca)
    state: dict[str, Any] = {}

    def dns() -> Finding:
        t0 = time.monotonic()
        infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
        addrs = sorted({str(i[4][0]) for i in infos})
        state["addr"] = infos[0][4][0]
        return ok(
            "network.dns",
            f"{hostname} -> {', '.join(addrs)} in {_ms(t0)} ms",
            addresses=addrs,
            ms=_ms(t0),
        )

    def dns_guarded() -> Finding:
        try:
            return dns()
        except socket.gaierror as e:
            return fail(
                "network.dns",
                f"cannot resolve {hostname}: {e}",
                "resolvectl status   # check the DNS server, or use the hub's IP",
            )

    steps = report.add(bounded("network.dns", dns_guarded, timeout))

    def tcp() -> Finding:
        try:
            secs = _tcp_connect(state["addr"], port, timeout)
        except TimeoutError:
            return fail(
                "network.tcp",
                f"no answer from {state['addr']}:{port} within "
                f"{timeout:g}s (timed out): a firewall drops the packets",
                f"curl -sS --max-time 5 {hub}/health   # still no answer: an outbound "
                "firewall or security group drops it",
                timed_out=True,
            )
        except OSError as e:
            return fail(
                "network.tcp",
                f"cannot connect to {state['addr']}:{port}: {e}",
                "worldland config show   # is `hub` the hub's URL? if so, ask its operator "
                "whether it is up",
            )
        return ok(
            "network.tcp",
            f"connected to {state['addr']}:{port} in {secs * 1000:.0f} ms",
            ms=int(secs * 1000),
        )

    if steps.status.value == "ok":
        steps = report.add(bounded("network.tcp", tcp, timeout + 1))
    else:
        report.add(skip("network.tcp", "skipped: name did not resolve"))

    def tls() -> Finding:
        ctx = _tls_context(certs, client=False)
        t0 = time.monotonic()
        try:
            with (
                socket.create_connection((state["addr"], port), timeout=timeout) as raw,
                ctx.wrap_socket(raw, server_hostname=hostname) as tls_sock,
            ):
                peer = tls_sock.getpeercert() or {}
                version, cipher = tls_sock.version(), (tls_sock.cipher() or ("?",))[0]
        except ssl.SSLCertVerificationError as e:
            return fail(
                "network.tls",
                f"the hub's certificate is not trusted: {e.verify_message}",
                "worldland config set hub_ca FILE   # FILE: the CA that signed the hub's "
                "certificate (or the hub URL is wrong, or a proxy intercepts TLS)",
            )
        except (ssl.SSLError, OSError) as e:
            return fail("network.tls", f"TLS handshake failed: {e}", None)
        expires = str(peer.get("notAfter", "?"))
        return ok(
            "network.tls",
            f"{version} {cipher} in {_ms(t0)} ms; hub cert valid until {expires}",
            version=version,
            cipher=cipher,
            ms=_ms(t0),
        )

    if https:
        if steps.status.value == "ok":
            steps = report.add(bounded("network.tls", tls, timeout + 1))
        else:
            report.add(skip("network.tls", "skipped: no TCP connection"))

    def http() -> Finding:
        import httpx

        verify: ssl.SSLContext | bool = _tls_context(certs, client=False) if https else False
        t0 = time.monotonic()
        sent = time.time()
        with httpx.Client(verify=verify, timeout=timeout) as client:
            resp = client.get(f"{hub}/health")
        received = time.time()
        date = resp.headers.get("date")
        if date:
            hub_time = email.utils.parsedate_to_datetime(date).timestamp()
            state["skew"] = hub_time - (sent + received) / 2
        if resp.status_code >= 400:
            return fail(
                "network.http",
                f"GET /health answered {resp.status_code}",
                f"curl -sS {hub}/health   # up but unhealthy: tell the hub operator",
            )
        return ok(
            "network.http",
            f"GET /health -> {resp.status_code} in {_ms(t0)} ms",
            status=resp.status_code,
            ms=_ms(t0),
        )

    def http_guarded() -> Finding:
        import httpx

        try:
            return http()
        except httpx.TimeoutException:
            return fail(
                "network.http",
                f"no HTTP answer within {timeout:g}s (timed out)",
                None,
                timed_out=True,
            )
        except httpx.HTTPError as e:
            return fail("network.http", f"HTTP request failed: {e}", None)

    if steps.status.value == "ok":
        report.add(bounded("network.http", http_guarded, timeout + 1))
    else:
        report.add(skip("network.http", "skipped: an earlier step failed"))

    report.add(_clock_check(state.get("skew")))
    report.add(
        bounded("network.mtls", lambda: _mtls_check(hub, https, certs, timeout), timeout + 1)
    )
    report.add(bounded("network.wireguard", lambda: wireguard_check(host, timeout), timeout + 1))
    report.add(
        bounded(
            "network.node-api", lambda: _node_api_check(node_api, certs, timeout), timeout * 2 + 1
        )
    )
    report.add(bounded("network.mtu", lambda: mtu_check(host, timeout), timeout * 2 + 1))
    report.duration_ms = _ms(start)
    return report


def _clock_check(skew: float | None) -> Finding:
    if skew is None:
        return skip("network.clock", "no Date header from the hub to compare with")
    now = datetime.now(UTC).strftime("%H:%M:%S UTC")
    seen = f"local clock {'ahead of' if skew < 0 else 'behind'} the hub by {abs(skew):.0f} s"
    if abs(skew) > SKEW_FAIL_S:
        return fail(
            "network.clock",
            f"{seen} (local {now}): SIWE logins and new certificates will be refused",
            SKEW_REMEDY,
            skew_s=round(skew, 1),
        )
    if abs(skew) > SKEW_WARN_S:
        return warn("network.clock", seen, SKEW_REMEDY, skew_s=round(skew, 1))
    return ok("network.clock", f"within {SKEW_WARN_S} s of the hub", skew_s=round(skew, 1))


def _mtls_get(url: str, certs: NodeCerts, timeout: float) -> int:
    import httpx

    with httpx.Client(verify=_tls_context(certs, client=True), timeout=timeout) as client:
        return client.get(url).status_code


def _mtls_check(hub: str, https: bool, certs: NodeCerts, timeout: float) -> Finding:
    import httpx

    if not (certs.cert and certs.key):
        return skip("network.mtls", "no node certificate yet (certs/node.crt): not joined")
    if not https:
        return skip("network.mtls", "the hub URL is plain http; mTLS cannot be tested on it")
    try:
        status = _mtls_get(f"{hub}/health", certs, timeout)
    except (httpx.HTTPError, ssl.SSLError, OSError) as e:
        return fail(
            "network.mtls",
            f"mTLS request with the node certificate failed: {e}",
            "worldland diag certs   # is the node cert expired or from another hub?",
        )
    if status in (401, 403):
        return fail(
            "network.mtls",
            f"the hub refused the node certificate ({status})",
            "worldland join   # re-bootstrap the node certificate",
        )
    return ok("network.mtls", f"GET /health with the node certificate -> {status}", status=status)


def _node_api_check(node_api: tuple[str, int], certs: NodeCerts, timeout: float) -> Finding:
    import httpx

    addr, port = node_api
    try:
        _tcp_connect(addr, port, timeout)
    except OSError as e:
        return fail(
            "network.node-api",
            f"nothing listens on {addr}:{port}: {e}",
            RESTART_REMEDY,
        )
    if not (certs.cert and certs.key):
        return warn(
            "network.node-api",
            f"port {port} is open; no node certificate to call /health with",
            None,
        )
    url = (
        f"https://localhost:{port}/health"
        if addr in ("127.0.0.1", "::1")
        else (f"https://{addr}:{port}/health")
    )
    try:
        status = _mtls_get(url, certs, timeout)
    except (httpx.HTTPError, ssl.SSLError, OSError) as e:
        return fail(
            "network.node-api",
            f"port {port} is open but /health over mTLS failed: {e}",
            DAEMON_JOURNAL,
        )
    if status != 200:
        return fail("network.node-api", f"/health answered {status}", DAEMON_JOURNAL)
    return ok("network.node-api", f"port {port} open; /health over mTLS -> 200")
