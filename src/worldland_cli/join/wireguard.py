"""The node's WireGuard peer: a key made here, an address from the hub, wg0.conf, wg0 up.

The private key is made on this host (X25519, clamped as ``wg genkey`` clamps it) and
written only into wg0.conf (mode 0600): it is never an action's field, so it is not in the
journal, the plan or its diff (which shows a placeholder, and hides the key lines of the
file it replaces), and no command that could print it runs. Only the public key goes to the
hub, which answers with the node's one address (``POST /v1/vpn/peers``); a join run again
after an interruption reuses the key join wrote, and the hub gives the same node the same
address. Reset releases the peer at the hub (``DELETE /v1/vpn/peers``); the journal puts
wg0.conf back as it was.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import posixpath
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from worldland_cli.host import Host
from worldland_cli.join.actions import Action, ActionFailed, Output, file_diff, run_checked
from worldland_cli.join.hubcall import HubCaller, hub_step, registered_node, session_file

if TYPE_CHECKING:
    from worldland_cli.hubclient import VpnPeer

MARK = "# Written by `worldland join`"
HIDDEN = "(made on this host when join runs; never shown)"
_SECRET_LINE = re.compile(r"(?im)^(\s*(?:PrivateKey|PresharedKey)\s*=\s*).*$")
_ENDPOINT = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$")


def conf_path(interface: str) -> str:
    return f"/etc/wireguard/{interface}.conf"


def new_private_key() -> str:
    """A WireGuard private key, base64 as ``wg genkey`` prints it (never logged)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    raw = bytearray(X25519PrivateKey.generate().private_bytes_raw())
    raw[0] &= 248  # Curve25519 clamping, as wg genkey does
    raw[31] = (raw[31] & 127) | 64
    return base64.b64encode(bytes(raw)).decode()


def is_key(text: str) -> bool:
    """Whether ``text`` is a WireGuard key: 32 bytes in base64."""
    try:
        return len(base64.b64decode(text, validate=True)) == 32 and len(text) == 44
    except (binascii.Error, ValueError):
        return False


def public_key_of(private_key: str) -> str:
    """``wg pubkey``: the public half of a base64 private key."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    key = X25519PrivateKey.from_private_bytes(base64.b64decode(private_key))
    return base64.b64encode(key.public_key().public_bytes_raw()).decode()


def hide_secrets(text: str) -> str:
    """A wg-quick config with its key lines replaced, for diffs and logs."""
    return _SECRET_LINE.sub(r"\1(hidden)", text)


def our_private_key(text: str | None) -> str | None:
    """The private key in a wg0.conf join wrote earlier (a join cut short reuses it)."""
    if text is None or not text.startswith(MARK):
        return None
    found = re.search(r"(?m)^PrivateKey = (\S+)$", text)
    return found.group(1) if found and is_key(found.group(1)) else None


def render_conf(node_id: str, peer: VpnPeer, private_key: str) -> str:
    """wg0.conf from the hub's answer, refusing values that are not what they claim to be.

    The values land in a file wg-quick executes hooks from: a hub must not be able to add a
    ``PostUp`` line through a field with a newline in it.
    """
    from worldland_cli.templating import render

    try:
        network = ipaddress.ip_network(peer.allowed_ips, strict=True)
        address = ipaddress.ip_address(peer.address)
    except ValueError as e:
        raise ActionFailed(f"the hub's VPN answer does not parse: {e}") from None
    if address not in network:
        raise ActionFailed(f"the hub gave {address}, outside its own network {network}")
    if not is_key(peer.server_public_key) or not _ENDPOINT.match(peer.endpoint):
        raise ActionFailed(
            f"the hub's VPN server key or endpoint is malformed ({peer.endpoint!r}); "
            "nothing was written"
        )
    return render(
        "wg0.conf",
        node_id=node_id,
        address=f"{address}/{network.prefixlen}",
        private_key=private_key,
        server_public_key=peer.server_public_key,
        endpoint=peer.endpoint,
        allowed_ips=str(network),
        persistent_keepalive=int(peer.persistent_keepalive),
    )


@dataclass(frozen=True)
class WireGuardPeer(HubCaller, Action):
    """Make (or reuse) the key, get the node's address from the hub, write wg0.conf 0600."""

    kind: ClassVar[str] = "wireguard-peer"
    join_only: ClassVar[bool] = True
    hub: str
    interface: str = "wg0"
    hub_ca: str | None = None
    private_key_file: str | None = None
    siwe_domain: str | None = None

    @property
    def path(self) -> str:
        return conf_path(self.interface)

    def describe(self) -> str:
        return (
            f"make a WireGuard key here, ask the hub at {self.hub} for this node's VPN "
            f"address, write {self.path} (mode 600)"
        )

    def as_shell(self) -> str:
        return (
            f"sudo worldland join --only vpn.wireguard {self.hub_flags()}   # a key made here, "
            f"the node's address from the hub (POST /v1/vpn/peers), {self.path} mode 600"
        )

    def diff(self, host: Host) -> str:

        from worldland_cli.templating import render

        old = hide_secrets(host.read_text(self.path) or "")
        new = render(
            "wg0.conf",
            node_id="(node.json's)",
            address="(the node's address from the hub)",
            private_key=HIDDEN,
            server_public_key="(the hub's VPN server key)",
            endpoint="(the hub's VPN endpoint)",
            allowed_ips="(from the hub: 10.100.0.0/16)",
            persistent_keepalive="(from the hub: 25)",
        )
        return file_diff(self.path, old, new)

    def touches(self) -> tuple[str, ...]:
        return (self.path, session_file())

    def apply(self, host: Host, out: Output) -> None:
        node_id = registered_node(host)
        current = host.read_text(self.path)
        private_key = our_private_key(current) or new_private_key()
        public_key = public_key_of(private_key)
        out.remember(public_key=public_key)
        asking = f"asking the hub at {self.hub} for this node's VPN address"
        with hub_step(asking), self.hub_client(host) as client:
            peer = client.add_vpn_peer(public_key, node_id)
        text = render_conf(node_id, peer, private_key)
        if text != current:
            directory = posixpath.dirname(self.path)
            if not host.exists(directory):
                host.makedirs(directory, 0o700)  # as wireguard-tools ships /etc/wireguard
            host.write_atomic(self.path, text, 0o600)
        host.chmod(self.path, 0o600)
        out.note(
            f"VPN address {peer.address} for node {node_id} (public key {public_key}); "
            f"{self.path} written, mode 600, the private key only there"
        )

    def undo(self, host: Host, before: dict[str, Any], purge: bool, out: Output) -> None:
        from worldland_cli.hubclient import HubRejected

        public_key = before.get("public_key")
        if not public_key:
            out.note("no key was sent to the hub: no VPN peer to release")
            return
        releasing = f"releasing the VPN peer at {self.hub}"
        with hub_step(releasing), self.hub_client(host) as client:
            try:
                client.delete_vpn_peer(str(public_key))
            except HubRejected as e:
                if e.status != 404:
                    raise
                out.note(f"the hub holds no peer for {public_key} any more")
                return
        out.note(f"VPN peer {public_key} released at {self.hub}")


def interface_up(host: Host, interface: str) -> bool:
    """Whether ``interface`` is a WireGuard interface now (``wg show`` answers for it)."""
    return host.run(("wg", "show", interface, "latest-handshakes")).ok


@dataclass(frozen=True)
class InterfaceUp(Action):
    """``wg-quick up``; reset takes the interface down again if it is still up."""

    kind: ClassVar[str] = "wireguard-up"
    interface: str = "wg0"

    def describe(self) -> str:
        return f"bring {self.interface} up (wg-quick up {self.interface})"

    def as_shell(self) -> str:
        return f"sudo wg-quick up {self.interface}"

    def apply(self, host: Host, out: Output) -> None:
        if interface_up(host, self.interface):  # a join cut short after this step ran
            out.note(f"{self.interface} is up already")
            return
        run_checked(host, out, ("wg-quick", "up", self.interface), timeout=120.0)

    def undo(self, host: Host, before: dict[str, Any], purge: bool, out: Output) -> None:
        if not interface_up(host, self.interface):
            out.note(f"{self.interface} is down already")
            return
        run_checked(host, out, ("wg-quick", "down", self.interface), timeout=120.0)
