"""WireGuard: the tunnel that carries the node's Kubernetes and hub traffic."""

from __future__ import annotations

import time

from worldland_cli.host import Host
from worldland_cli.requirements.base import Finding, Requirement

VPN_DOC = "docs/provider-guide.md#wireguard"
INSTALL_REMEDY = "sudo apt-get install -y wireguard-tools"
# WireGuard gives up on a session 180 s after its last handshake (REJECT_AFTER_TIME), and a
# live peer with persistent keepalive re-handshakes every two minutes.
STALE_AFTER_S = 180
JOIN_REMEDY = "sudo worldland join   # registers this node's WireGuard peer with the hub"


def parse_latest_handshakes(stdout: str) -> dict[str, int]:
    """``wg show IFACE latest-handshakes`` -> {peer public key: unix time, 0 = never}."""
    out: dict[str, int] = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


class WireGuard(Requirement):
    id = "vpn.wireguard"
    title = "WireGuard tools; wg0 up with a recent handshake"

    def __init__(self, interface: str = "wg0") -> None:
        self.interface = interface

    def check(self, host: Host) -> Finding:
        iface = self.interface
        if host.which("wg") is None:
            return self.fail("wg not found", INSTALL_REMEDY, VPN_DOC)
        conf = f"/etc/wireguard/{iface}.conf"
        if not host.exists(conf):
            return self.ok(f"wg installed; no {conf} yet (worldland join creates it)")
        res = host.run(["wg", "show", iface, "latest-handshakes"])
        up = f"sudo systemctl enable --now wg-quick@{iface}"
        if not res.ok:
            return self.fail(f"{conf} exists but {res.describe_failure()}", up, VPN_DOC)
        handshakes = parse_latest_handshakes(res.stdout)
        if not handshakes:
            return self.fail(f"{iface} is up but has no peer", JOIN_REMEDY, VPN_DOC)
        latest = max(handshakes.values())
        restart = f"sudo systemctl restart wg-quick@{iface} && sudo wg show {iface}"
        if latest == 0:
            return self.fail(
                f"{iface} is up but never completed a handshake (UDP blocked or wrong endpoint?)",
                restart,
                VPN_DOC,
            )
        age = int(time.time()) - latest
        if age > STALE_AFTER_S:
            return self.fail(
                f"{iface}: last handshake {age} s ago (stale after {STALE_AFTER_S} s)",
                restart,
                VPN_DOC,
                handshake_age_s=age,
            )
        return self.ok(f"{iface} up; last handshake {age} s ago", handshake_age_s=age)
