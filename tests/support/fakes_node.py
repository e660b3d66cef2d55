"""Stateful fakes for join's node steps: WireGuard's tools and kubeadm, on a fake root.

A plugin of :mod:`tests.support.fakesystem`: importing it registers the tools and packages.

- ``wireguard-tools`` installs ``wg`` and ``wg-quick`` and Debian's ``wg-quick@.service``.
  ``wg genkey`` and ``wg pubkey`` are the real ``wg``. ``wg-quick up|down IFACE`` parses
  /etc/wireguard/IFACE.conf the way wg-quick and ``wg setconf`` do (unknown keys, malformed
  keys, addresses and endpoints are refused with their words) and, instead of making an
  interface, records it under /run/fake-wireguard (kernel state, not a file join restores).
  ``wg show IFACE latest-handshakes|public-key`` answers from that record; a peer with an
  endpoint counts as having completed its handshake when the interface came up (the real
  tunnel is tested in network namespaces, tests/join/test_wireguard_netns.py).
- ``kubeadm``, the one fake of it (its package is pkgs.k8s.io's, declared in
  :mod:`tests.support.fakes_gpu`), answers ``version -o short`` with the installed package's
  version, ``reset -f`` and ``join --config FILE``. join reads the file as kubeadm 1.29 does
  (apiVersion, kind, unknown fields warned about, then kubeadm's validation with its
  messages), runs the preflight file checks, then discovery against the fake cluster
  described by ``cluster.json`` beside the fakes (:func:`make_cluster`: API endpoint,
  tokens, CA): a wrong endpoint, token or CA pin fails the way the real one does. It then
  writes what a worker's join leaves (pki/ca.crt, /var/lib/kubelet/config.yaml and
  kubeadm-flags.env, bootstrap-kubelet.conf and, after the kubelet's TLS bootstrap,
  kubelet.conf in the kubelet's own kubeconfig format and its client certificate), and
  removes bootstrap-kubelet.conf again. Node labels the kubelet would refuse make it time
  out waiting for the kubelet, as the real one does. ``reset -f`` deletes what kubeadm
  reset deletes and prints what it leaves.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.fakes_gpu import kube_version
from tests.support.fakesystem import TOOLS, Package, Unexpected, add_package

REAL_WG = shutil.which("wg", path="/usr/bin:/bin:/usr/local/bin") or "/usr/bin/wg"
WG_STATE = "run/fake-wireguard"
CLUSTER_FILE = "cluster.json"

WG_QUICK_UNIT = """[Unit]
Description=WireGuard via wg-quick(8) for %I
After=network-online.target nss-lookup.target
Wants=network-online.target nss-lookup.target
PartOf=wg-quick.target
Documentation=man:wg-quick(8)

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/wg-quick up %i
ExecStop=/usr/bin/wg-quick down %i
Environment=WG_ENDPOINT_RESOLUTION_RETRIES=infinity

[Install]
WantedBy=multi-user.target
"""


# ------------------------------------------------------------------------------ WireGuard


def _is_key(value: str) -> bool:
    try:
        return len(value) == 44 and len(base64.b64decode(value, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


class ConfigError(Exception):
    """What wg-quick or ``wg setconf`` prints about a config it refuses."""


INTERFACE_KEYS = {"address", "dns", "mtu", "table", "preup", "postup", "predown", "postdown",
                  "saveconfig", "privatekey", "listenport", "fwmark"}  # fmt: skip
PEER_KEYS = {"publickey", "presharedkey", "allowedips", "endpoint", "persistentkeepalive"}


def parse_wg_config(text: str) -> dict[str, Any]:
    """wg-quick's reading of a config: the interface's keys and each peer's."""
    interface: dict[str, str] = {}
    peers: list[dict[str, str]] = []
    section: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.lower() == "[interface]":
            section = interface
            continue
        if line.lower() == "[peer]":
            peers.append({})
            section = peers[-1]
            continue
        key, sep, value = (part.strip() for part in line.partition("="))
        allowed = INTERFACE_KEYS if section is interface else PEER_KEYS
        if section is None or not sep or key.lower() not in allowed:
            raise ConfigError(f"Line unrecognized: `{line}'\nConfiguration parsing error")
        section[key.lower()] = value
    for name in ("privatekey",):
        if name in interface and not _is_key(interface[name]):
            raise ConfigError(
                f"Key is not the correct length or format: `{interface[name]}'\n"
                "Configuration parsing error"
            )
    for peer in peers:
        if not _is_key(peer.get("publickey", "")):
            raise ConfigError(
                f"Key is not the correct length or format: `{peer.get('publickey', '')}'\n"
                "Configuration parsing error"
            )
        endpoint = peer.get("endpoint")
        if endpoint is not None and not re.fullmatch(r"[^\s:]+:\d{1,5}|\[[^\]]+\]:\d{1,5}",
                                                     endpoint):  # fmt: skip
            raise ConfigError(
                f"Unable to parse endpoint: `{endpoint}'\nConfiguration parsing error"
            )
        for allowed_ip in peer.get("allowedips", "").split(","):
            try:
                ipaddress.ip_network(allowed_ip.strip(), strict=False)
            except ValueError:
                raise ConfigError(
                    f"Unable to parse IP address: `{allowed_ip.strip()}'\n"
                    "Configuration parsing error"
                ) from None
    for address in interface.get("address", "").split(","):
        try:
            ipaddress.ip_interface(address.strip())
        except ValueError:
            raise ConfigError(
                f'Error: any valid prefix is expected rather than "{address.strip()}".'
            ) from None
    return {"interface": interface, "peers": peers}


def _real_wg(args: list[str], stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([REAL_WG, *args], input=stdin, capture_output=True, text=True)


def _wg_state(root: Path, interface: str) -> Path:
    return root / WG_STATE / f"{interface}.json"


def _wg_quick(root: Path, args: list[str]) -> int:
    if len(args) != 2 or args[0] not in ("up", "down") or "/" in args[1]:
        raise Unexpected
    verb, interface = args
    state = _wg_state(root, interface)
    conf = root / "etc/wireguard" / f"{interface}.conf"
    if verb == "down":
        if not state.exists():
            print(f"wg-quick: `{interface}' is not a WireGuard interface", file=sys.stderr)
            return 1
        state.unlink()
        print(f"[#] ip link delete dev {interface}", file=sys.stderr)
        return 0
    if not conf.exists():
        print(f"wg-quick: `/etc/wireguard/{interface}.conf' does not exist", file=sys.stderr)
        return 1
    if conf.stat().st_mode & 0o007:
        print(f"Warning: `/etc/wireguard/{interface}.conf' is world accessible", file=sys.stderr)
    if state.exists():
        print(f"wg-quick: `{interface}' already exists", file=sys.stderr)
        return 1
    try:
        parsed = parse_wg_config(conf.read_text())
    except ConfigError as e:
        print(f"[#] ip link add {interface} type wireguard", file=sys.stderr)
        print(f"[#] wg setconf {interface} /dev/fd/63\n{e}", file=sys.stderr)
        print(f"[#] ip link delete dev {interface}", file=sys.stderr)
        return 1
    private = parsed["interface"].get("privatekey", "")
    public = _real_wg(["pubkey"], private + "\n").stdout.strip() if private else ""
    now = int(time.time())
    record = {
        "public_key": public,
        "addresses": [a.strip() for a in parsed["interface"].get("address", "").split(",")],
        "peers": [
            {
                "public_key": p["publickey"],
                "endpoint": p.get("endpoint"),
                "allowed_ips": p.get("allowedips", ""),
                "handshake": now if p.get("endpoint") else 0,
            }
            for p in parsed["peers"]
        ],
    }
    print(f"[#] ip link add {interface} type wireguard", file=sys.stderr)
    print(f"[#] wg setconf {interface} /dev/fd/63", file=sys.stderr)
    for address in record["addresses"]:
        print(f"[#] ip -4 address add {address} dev {interface}", file=sys.stderr)
    print(f"[#] ip link set mtu 1420 up dev {interface}", file=sys.stderr)
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps(record))
    return 0


def _wg(root: Path, args: list[str]) -> int:
    if args in (["genkey"], ["pubkey"]):
        done = _real_wg(args, sys.stdin.read() if args == ["pubkey"] else "")
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
        return done.returncode
    if len(args) != 3 or args[0] != "show" or args[2] not in ("latest-handshakes", "public-key"):
        raise Unexpected
    state = _wg_state(root, args[1])
    if not state.exists():
        print("Unable to access interface: No such device", file=sys.stderr)
        return 1
    record = json.loads(state.read_text())
    if args[2] == "public-key":
        print(record["public_key"])
    else:
        for peer in record["peers"]:
            print(f"{peer['public_key']}\t{peer['handshake']}")
    return 0


# -------------------------------------------------------------------------------- kubeadm

SCHEME = "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/scheme/scheme.go:31"
STACK_HINT = "To see the stack trace of this error execute with --v=5 or higher"
TOKEN_RE = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
KNOWN = {
    "": {"apiVersion", "kind", "discovery", "nodeRegistration", "caCertPath", "controlPlane",
         "skipPhases", "patches"},
    "discovery": {"bootstrapToken", "file", "tlsBootstrapToken", "timeout"},
    "discovery.bootstrapToken": {"apiServerEndpoint", "token", "caCertHashes",
                                 "unsafeSkipCAVerification"},
    "nodeRegistration": {"name", "criSocket", "taints", "kubeletExtraArgs",
                         "ignorePreflightErrors", "imagePullPolicy"},
}  # fmt: skip
JOIN_FILES = (
    "etc/kubernetes/kubelet.conf",
    "etc/kubernetes/bootstrap-kubelet.conf",
    "etc/kubernetes/pki/ca.crt",
)
RESET_DIRS = ("etc/kubernetes/manifests", "var/lib/kubelet", "etc/kubernetes/pki")
RESET_FILES = ("admin.conf", "super-admin.conf", "kubelet.conf", "bootstrap-kubelet.conf",
               "controller-manager.conf", "scheduler.conf")  # fmt: skip
RESET_TAIL = """
The reset process does not clean CNI configuration. To do so, you must remove /etc/cni/net.d

The reset process does not reset or clean up iptables rules or IPVS tables.
If you wish to reset iptables, you must do so manually by using the "iptables" command.

If your cluster was setup to utilize IPVS, run ipvsadm --clear (or similar)
to reset your system's IPVS tables.

The reset process does not clean your kubeconfig files and you must remove them manually.
Please, check the contents of the $HOME/.kube/config file.
"""


class KubeadmError(Exception):
    """kubeadm's error text (printed to stderr, then the stack-trace hint, exit 1)."""


def _field_errors(errors: list[str]) -> KubeadmError:
    """field.ErrorList.ToAggregate(): one error alone, several in brackets."""
    return KubeadmError(errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")


def _warn_unknown(doc: dict[str, Any], path: str = "") -> None:
    for key, value in doc.items():
        where = f"{path}.{key}" if path else key
        if key not in KNOWN.get(path, set()):
            print(f'W0101 00:00:00.000000    4242 strict.go:55] error unmarshaling configuration '
                  f'schema.GroupVersionKind{{Group:"kubeadm.k8s.io", Version:"v1beta3", '
                  f'Kind:"JoinConfiguration"}}: error unmarshaling JSON: while decoding JSON: '
                  f'json: unknown field "{where}"', file=sys.stderr)  # fmt: skip
        elif isinstance(value, dict) and where in KNOWN:
            _warn_unknown(value, where)


def load_join_configuration(path: Path, shown: str) -> dict[str, Any]:
    """kubeadm's loading of --config: the JoinConfiguration, defaulted and validated."""
    import yaml

    try:
        text = path.read_text()
    except FileNotFoundError:
        raise KubeadmError(
            f'unable to read config from "{shown}" : open {shown}: no such file or directory'
        ) from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        raise KubeadmError(f"error converting YAML to JSON: {e}") from None
    join: dict[str, Any] | None = None
    for doc in docs:
        version = str(doc.get("apiVersion", "")) if isinstance(doc, dict) else ""
        kind = str(doc.get("kind", "")) if isinstance(doc, dict) else ""
        if not version or not kind:
            raise KubeadmError("Object 'Kind' is missing in '" + text.strip()[:60] + "'")
        if version in ("kubeadm.k8s.io/v1beta1", "kubeadm.k8s.io/v1beta2"):
            raise KubeadmError(
                f'your configuration file uses an old API spec: "{version}". Please use '
                "kubeadm v1.21 instead and run 'kubeadm config migrate --old-config old.yaml "
                "--new-config new.yaml', which will write the new, similar spec using a newer "
                "API version."
            )
        if version == "kubeadm.k8s.io/v1beta3" and kind == "JoinConfiguration":
            join = doc
        elif version.startswith("kubeadm.k8s.io/") and version != "kubeadm.k8s.io/v1beta3":
            raise KubeadmError(
                f'no kind "{kind}" is registered for version "{version}" in scheme "{SCHEME}"'
            )
    if join is None:
        raise KubeadmError("no JoinConfiguration found in the supplied config")
    _warn_unknown(join)
    return join


def validate_join_configuration(join: dict[str, Any], hostname: str) -> dict[str, Any]:
    """ValidateJoinConfiguration, after kubeadm's defaulting; the defaulted values."""
    discovery = join.get("discovery") or {}
    registration = join.get("nodeRegistration") or {}
    errors: list[str] = []
    bootstrap = discovery.get("bootstrapToken")
    if bootstrap is None and discovery.get("file") is None:
        errors.append('discovery: Invalid value: "": bootstrapToken or file must be set')
    if bootstrap is not None:
        endpoint = str(bootstrap.get("apiServerEndpoint") or "")
        token = str(bootstrap.get("token") or "")
        hashes = bootstrap.get("caCertHashes") or []
        if not endpoint:
            errors.append("discovery.bootstrapToken: Required value: APIServerEndpoint is not set")
        if not hashes and not bootstrap.get("unsafeSkipCAVerification"):
            errors.append(
                'discovery.bootstrapToken.caCertHashes: Invalid value: "": using token-based '
                "discovery without caCertHashes can be unsafe. Set unsafeSkipCAVerification "
                "as true in your kubeadm config file or pass "
                "--discovery-token-unsafe-skip-ca-verification flag to continue"
            )
        if not TOKEN_RE.match(token):
            errors.append(
                f'discovery.bootstrapToken.token: Invalid value: "{token}": the bootstrap '
                "token is invalid"
            )
        tls_token = str(discovery.get("tlsBootstrapToken") or token)
        if not TOKEN_RE.match(tls_token):
            errors.append(
                f'discovery.tlsBootstrapToken: Invalid value: "{tls_token}": the bootstrap '
                "token is invalid"
            )
        if endpoint and not re.fullmatch(r"[^\s:]+:\d+|\[[^\]]+\]:\d+", endpoint):
            errors.append(
                f'discovery.bootstrapToken.apiServerEndpoint: Invalid value: "{endpoint}": '
                f"address {endpoint}: missing port in address"
            )
    name = str(registration.get("name") or hostname).lower()
    if not DNS1123.match(name):
        errors.append(
            f'nodeRegistration.name: Invalid value: "{name}": a lowercase RFC 1123 subdomain '
            "must consist of lower case alphanumeric characters, '-' or '.', and must start "
            "and end with an alphanumeric character"
        )
    socket = str(registration.get("criSocket") or "unix:///var/run/containerd/containerd.sock")
    if not socket.startswith("unix:///"):
        errors.append(
            f'nodeRegistration.criSocket: Invalid value: "{socket}": path is not absolute'
        )
    extra = registration.get("kubeletExtraArgs") or {}
    if not isinstance(extra, dict):
        raise KubeadmError(
            "json: cannot unmarshal array into Go struct field NodeRegistrationOptions."
            "nodeRegistration.kubeletExtraArgs of type map[string]string"
        )
    if errors:
        raise _field_errors(errors)
    return {
        "endpoint": bootstrap["apiServerEndpoint"],
        "token": bootstrap["token"],
        "hashes": [str(h) for h in bootstrap.get("caCertHashes") or []],
        "name": name,
        "socket": socket,
        "extra": {str(k): str(v) for k, v in extra.items()},
        "ca_path": str(join.get("caCertPath") or "/etc/kubernetes/pki/ca.crt"),
    }


def make_cluster(fakes: Path, api_server: str, token: str) -> str:
    """Describe the fake cluster kubeadm joins (endpoint, token, CA); its CA pin."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    from tests.support.pki import cert_pem, issue, key_pem

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    ca_key, ca_cert = issue("kubernetes", None, name, ca=True, days=3650)
    spki = ca_cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (fakes / CLUSTER_FILE).write_text(
        json.dumps(
            {
                "api_server": api_server,
                "tokens": [token],
                "ca_cert": cert_pem(ca_cert).decode(),
                "ca_key": key_pem(ca_key).decode(),
            }
        )
    )
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def _discover(fakes: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """Token discovery against cluster.json: the cluster, or kubeadm's refusal."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    endpoint = cfg["endpoint"]
    prefix = "error execution phase preflight: couldn't validate the identity of the API Server"
    described = fakes / CLUSTER_FILE
    cluster = json.loads(described.read_text()) if described.exists() else None
    if cluster is None or cluster["api_server"] != endpoint:
        raise KubeadmError(
            f'{prefix}: Get "https://{endpoint}/api/v1/namespaces/kube-public/configmaps/'
            f'cluster-info?timeout=10s": dial tcp {endpoint}: connect: connection refused'
        )
    token_id = cfg["token"].split(".")[0]
    if cfg["token"] not in cluster["tokens"]:
        raise KubeadmError(
            f"{prefix}: could not find a JWS signature in the cluster-info ConfigMap for "
            f'token ID "{token_id}"'
        )
    ca = x509.load_pem_x509_certificate(cluster["ca_cert"].encode())
    spki = ca.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pin = "sha256:" + hashlib.sha256(spki).hexdigest()
    if cfg["hashes"] and pin not in cfg["hashes"]:
        raise KubeadmError(
            f"{prefix}: cluster CA found in cluster-info ConfigMap is invalid: none of the "
            f'public keys "{pin}" are pinned'
        )
    return dict(cluster)


def _kubelet_conf(server: str, ca_pem: str) -> str:
    """kubelet.conf as the kubelet writes it after its TLS bootstrap."""
    ca_data = base64.b64encode(ca_pem.encode()).decode()
    pem = "/var/lib/kubelet/pki/kubelet-client-current.pem"
    return (
        "apiVersion: v1\nclusters:\n- cluster:\n"
        f"    certificate-authority-data: {ca_data}\n    server: {server}\n"
        "  name: default-cluster\ncontexts:\n- context:\n    cluster: default-cluster\n"
        "    namespace: default\n    user: default-auth\n  name: default-context\n"
        "current-context: default-context\nkind: Config\npreferences: {}\nusers:\n"
        f"- name: default-auth\n  user:\n    client-certificate: {pem}\n    client-key: {pem}\n"
    )


def _bootstrap_conf(server: str, ca_pem: str, token: str) -> str:
    ca_data = base64.b64encode(ca_pem.encode()).decode()
    return (
        "apiVersion: v1\nclusters:\n- cluster:\n"
        f"    certificate-authority-data: {ca_data}\n    server: {server}\n"
        "  name: kubernetes\ncontexts:\n- context:\n    cluster: kubernetes\n"
        "    user: tls-bootstrap-token-user\n  name: tls-bootstrap-token-user@kubernetes\n"
        "current-context: tls-bootstrap-token-user@kubernetes\nkind: Config\npreferences: {}\n"
        f"users:\n- name: tls-bootstrap-token-user\n  user:\n    token: {token}\n"
    )


KUBELET_CONFIG = """apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
  webhook:
    cacheTTL: 0s
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
clusterDomain: cluster.local
kind: KubeletConfiguration
rotateCertificates: true
staticPodPath: /etc/kubernetes/manifests
"""


def _write(root: Path, path: str, text: str | bytes, mode: int = 0o644) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:
        target.write_text(text)
    target.chmod(mode)


def _kubelet_client(root: Path, cluster: dict[str, Any], name: str) -> None:
    """The kubelet's client certificate from its TLS bootstrap, and the -current link."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from tests.support.pki import cert_pem, issue, key_pem

    ca_key = serialization.load_pem_private_key(cluster["ca_key"].encode(), password=None)
    ca_cert = x509.load_pem_x509_certificate(cluster["ca_cert"].encode())
    key, cert = issue(f"system:node:{name}", ca_key, ca_cert.subject)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d-%H-%M-%S")
    dated = f"/var/lib/kubelet/pki/kubelet-client-{stamp}.pem"
    _write(root, dated, cert_pem(cert) + key_pem(key), 0o600)
    link = root / "var/lib/kubelet/pki/kubelet-client-current.pem"
    link.unlink(missing_ok=True)
    link.symlink_to(dated)


def _join(root: Path, args: list[str]) -> int:
    if len(args) != 2 or args[0] != "--config":
        raise Unexpected
    fakes = Path(os.environ["WORLDLAND_FAKE_LOG"])
    hostname = (root / "etc/hostname").read_text().strip() if (root / "etc/hostname").exists() \
        else "localhost"  # fmt: skip
    join = load_join_configuration(root / args[1].lstrip("/"), args[1])
    cfg = validate_join_configuration(join, hostname)
    print("[preflight] Running pre-flight checks")
    taken = [f"/{p}" for p in JOIN_FILES if (root / p).exists()]
    manifests = root / "etc/kubernetes/manifests"
    if taken or (manifests.is_dir() and any(manifests.iterdir())):
        lines = [f"\t[ERROR FileAvailable-{p.replace('/', '-')}]: {p} already exists"
                 for p in taken]  # fmt: skip
        if manifests.is_dir() and any(manifests.iterdir()):
            lines.append("\t[ERROR DirAvailable--etc-kubernetes-manifests]: "
                         "/etc/kubernetes/manifests is not empty")  # fmt: skip
        raise KubeadmError(
            "error execution phase preflight: [preflight] Some fatal errors occurred:\n"
            + "\n".join(lines)
            + "\n[preflight] If you know what you are doing, you can make a check non-fatal "
            "with `--ignore-preflight-errors=...`"
        )
    cluster = _discover(fakes, cfg)
    print("[preflight] Reading configuration from the cluster...")
    print("[preflight] FYI: You can look at this config file with "
          "'kubectl -n kube-system get cm kubeadm-config -o yaml'")  # fmt: skip
    server = f"https://{cfg['endpoint']}"
    flags = {"container-runtime-endpoint": cfg["socket"],
             "pod-infra-container-image": "registry.k8s.io/pause:3.9", **cfg["extra"]}  # fmt: skip
    args_line = " ".join(f"--{k}={v}" for k, v in sorted(flags.items()))
    print('[kubelet-start] Writing kubelet configuration to file "/var/lib/kubelet/config.yaml"')
    _write(root, "/var/lib/kubelet/config.yaml", KUBELET_CONFIG)
    print("[kubelet-start] Writing kubelet environment file with flags to file "
          '"/var/lib/kubelet/kubeadm-flags.env"')  # fmt: skip
    _write(root, "/var/lib/kubelet/kubeadm-flags.env", f'KUBELET_KUBEADM_ARGS="{args_line}"\n')
    bootstrap = "/etc/kubernetes/bootstrap-kubelet.conf"
    _write(root, bootstrap, _bootstrap_conf(server, cluster["ca_cert"], cfg["token"]), 0o600)
    _write(root, cfg["ca_path"], cluster["ca_cert"])
    try:
        print("[kubelet-start] Starting the kubelet")
        print("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap...")
        labels = cfg["extra"].get("node-labels", "")
        for label in filter(None, labels.split(",")):
            _, _, value = label.partition("=")
            if not LABEL_VALUE.match(value) or len(value) > 63:
                print("[kubelet-check] Initial timeout of 40s passed.")
                raise KubeadmError(
                    "error execution phase kubelet-start: timed out waiting for the condition"
                )
        _kubelet_client(root, cluster, cfg["name"])
        _write(root, "/etc/kubernetes/kubelet.conf", _kubelet_conf(server, cluster["ca_cert"]),
               0o600)  # fmt: skip
    finally:
        (root / bootstrap.lstrip("/")).unlink(missing_ok=True)  # kubeadm's deferred remove
    print("\nThis node has joined the cluster:\n* Certificate signing request was sent to "
          "apiserver and a response was received.\n* The Kubelet was informed of the new "
          "secure connection details.\n\nRun 'kubectl get nodes' on the control-plane to see "
          "this node join the cluster.\n")  # fmt: skip
    return 0


def _reset(root: Path) -> int:
    print("[preflight] Running pre-flight checks")
    print("[reset] Stopping the kubelet service")
    print('[reset] Unmounting mounted directories in "/var/lib/kubelet"')
    dirs = " ".join(f"/{d}" for d in RESET_DIRS)
    print(f"[reset] Deleting contents of directories: [{dirs}]")
    for directory in RESET_DIRS:
        target = root / directory
        if target.is_dir():
            for entry in target.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
    files = " ".join(f"/etc/kubernetes/{f}" for f in RESET_FILES)
    print(f"[reset] Deleting files: [{files}]")
    for name in RESET_FILES:
        (root / "etc/kubernetes" / name).unlink(missing_ok=True)
    print(RESET_TAIL)
    return 0


def _kubeadm(root: Path, args: list[str]) -> int:
    if args == ["version", "-o", "short"]:
        print(kube_version(root, "kubeadm"))
        return 0
    if args == ["reset", "-f"]:
        return _reset(root)
    if args[:1] != ["join"]:
        raise Unexpected
    try:
        return _join(root, args[1:])
    except KubeadmError as e:
        print(e, file=sys.stderr)
        print(STACK_HINT, file=sys.stderr)
        return 1


TOOLS.update({"wg": _wg, "wg-quick": _wg_quick, "kubeadm": _kubeadm})
add_package(
    "wireguard-tools",
    Package(
        "1.0.20210914-1ubuntu2",
        binaries={"wg": "fake:wg", "wg-quick": "fake:wg-quick"},
        units={"wg-quick@.service": WG_QUICK_UNIT,
               "wg-quick.target": "[Unit]\nDescription=WireGuard Tunnels via wg-quick(8)\n"},
    ),
)  # fmt: skip
