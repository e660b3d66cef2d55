"""WireGuard: the tunnel that carries the node's Kubernetes and hub traffic.

Join meets it the seed's way (``wg-quick up wg0 && systemctl enable wg-quick@wg0``), with
wg0.conf made from a key of this host and the address the hub gives the node
(:mod:`worldland_cli.join.wireguard`). Doctor before join is content with the tools.
"""

from __future__ import annotations

import time

from worldland_cli.host import Host
from worldland_cli.join.actions import Action, EnableUnit, InstallPackages, Manual
from worldland_cli.requirements.base import Finding, JoinSettings, Requirement

VPN_DOC = "provider-guide#wireguard"
INSTALL_REMEDY = "sudo apt-get install -y wireguard-tools"
# WireGuard gives up on a session 180 s after its last handshake (REJECT_AFTER_TIME), and a
# live peer with persistent keepalive re-handshakes every two minutes.
STALE_AFTER_S = 180
JOIN_REMEDY = (
    "sudo worldland join --yes --only vpn.wireguard   # registers this node's WireGuard peer "
    "with the hub"
)
# Right after `wg-quick up`, the first handshake takes a round trip (PersistentKeepalive
# sends one at once): join's check waits this long for it, doctor's does not wait.
HANDSHAKE_WAIT_S = 10.0
ENABLED_STATES = ("enabled", "enabled-runtime", "static", "alias")


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

    def __init__(self, interface: str = "wg0", *, joining: bool = False) -> None:
        """``joining``: no wg0.conf yet is join's to fix (a failure), not doctor's ok."""
        self.interface = interface
        self.joining = joining

    @property
    def unit(self) -> str:
        return f"wg-quick@{self.interface}"

    def check(self, host: Host) -> Finding:
        iface = self.interface
        if host.which("wg") is None:
            return self.fail("wg not found", INSTALL_REMEDY, VPN_DOC)
        conf = f"/etc/wireguard/{iface}.conf"
        if not host.exists(conf):
            if self.joining:
                missing = f"no {conf} yet (the hub gives this node its address)"
                return self.fail(missing, JOIN_REMEDY, VPN_DOC)
            return self.ok(f"wg installed; no {conf} yet (worldland join creates it)")
        res = host.run(["wg", "show", iface, "latest-handshakes"])
        up = f"sudo systemctl enable --now wg-quick@{iface}"
        if not res.ok:
            return self.fail(f"{conf} exists but {res.describe_failure()}", up, VPN_DOC)
        handshakes = parse_latest_handshakes(res.stdout)
        if not handshakes:
            return self.fail(f"{iface} is up but has no peer", JOIN_REMEDY, VPN_DOC)
        latest = max(handshakes.values())
        deadline = time.monotonic() + (HANDSHAKE_WAIT_S if self.joining else 0.0)
        while latest == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
            again = host.run(["wg", "show", iface, "latest-handshakes"])
            latest = max(parse_latest_handshakes(again.stdout).values(), default=0)
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
        seen = f"{iface} up; last handshake {age} s ago"
        state = self.unit_state(host)
        if state is not None and state not in ENABLED_STATES:
            lost = f"{seen}, but {self.unit} is {state}: {iface} stays down after a reboot"
            enable = f"sudo systemctl enable {self.unit}"
            if self.joining:
                return self.fail(lost, enable, VPN_DOC, handshake_age_s=age)
            return self.warn(lost, enable, handshake_age_s=age)
        return self.ok(seen, handshake_age_s=age)

    def unit_state(self, host: Host) -> str | None:
        """``systemctl is-enabled wg-quick@wg0``, or None without systemd."""
        res = host.run(["systemctl", "is-enabled", self.unit])
        if res.not_found:
            return None
        return res.stdout.strip() or "not installed"

    def plan(self, host: Host, finding: Finding, settings: JoinSettings) -> list[Action]:
        """What is missing, in the seed's order: the tools, wg0.conf, wg0 up, enabled.

        Before join (doctor's fix) the tools are all the check asks for; the peer is join's.
        """
        from worldland_cli.join.wireguard import InterfaceUp, WireGuardPeer, interface_up

        actions: list[Action] = []
        installed = host.which("wg") is not None
        if not installed:
            actions.append(InstallPackages(("wireguard-tools",)))
        if not self.joining and not host.exists(f"/etc/wireguard/{self.interface}.conf"):
            return actions or [Manual(finding.remedy or JOIN_REMEDY, command=True)]
        if not host.exists(f"/etc/wireguard/{self.interface}.conf"):
            actions.append(
                WireGuardPeer(
                    hub=settings.hub,
                    interface=self.interface,
                    hub_ca=settings.hub_ca,
                    private_key_file=settings.private_key_file,
                    siwe_domain=settings.siwe_domain,
                )
            )
        if not installed or not interface_up(host, self.interface):
            actions.append(InterfaceUp(self.interface))
        if not installed or self.unit_state(host) not in ENABLED_STATES:
            # Enable only: --now would run `wg-quick up` again, which refuses an interface
            # that is up ("wg0 already exists").
            actions.append(EnableUnit(self.unit, now=False))
        # Up, with a peer, enabled, and still no recent handshake: the hub's server or the
        # path to it, which join cannot mend.
        return actions or [Manual(finding.remedy or JOIN_REMEDY, command=True)]
