"""The support bundle: built from a fake root full of planted secrets, none may survive."""

from __future__ import annotations

import io
import json
import stat
import tarfile
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.diag.conftest import ToolMaker
from tests.support.pki import Pki, key_pem
from worldland_cli import config
from worldland_cli.diag.base import DiagReport, fail
from worldland_cli.diag.bundle import build_bundle, never_bundled
from worldland_cli.host import Host
from worldland_cli.main import app

HOME = "/home/provider/.worldland"
WALLET = "8da4ef21b864d2cc526dbdb2a120bd2874c36c9d0a1fb7f8c63d7f7a8b41de8f"
SESSION = "wl_sess_7Hq2LmZp9XcV4bNt"
WG_KEY = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
WG_PSK = "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE="
KUBE_KEY_DATA = "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1IY0NBUUVFSUtl"
KUBE_CERT_DATA = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJrVENCK3dJSkFO"
KUBE_TOKEN = "abcdef.0123456789abcdef"
HEADER_TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJub2RlIn0.c2lnbmF0dXJl"
REGISTRY_PASSWORD = "registry-Pa55w0rd!"
LOG_WALLET = "0x5f2e1bd0b6c9a4e87f3d2c1b0a99887766554433221100ffeeddccbbaa998877"


def plant(root: Path, pki: Pki, tool: ToolMaker) -> dict[str, str]:
    """A joined provider host whose configs and logs hold every kind of secret.

    Returns the planted values by kind; the PEM key body is added as it was written.
    """
    home = root / HOME.lstrip("/")
    (home / "certs").mkdir(parents=True)
    (home / "private-key.txt").write_text(WALLET + "\n")
    (home / "session.json").write_text(json.dumps({"token": SESSION, "address": "0xabc"}))
    pki.write_node_certs(home / "certs")
    (home / "config.toml").write_text('hub = "http://127.0.0.1:9"\n')
    (home / "node.json").write_text(json.dumps({"node_id": "n-1", "api_token": SESSION}))
    etc = root / "etc"
    (etc / "wireguard").mkdir()
    (etc / "wireguard" / "wg0.conf").write_text(
        f"[Interface]\nAddress = 10.100.1.7/24\nPrivateKey = {WG_KEY}\nMTU = 1380\n\n"
        f"[Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\n"
        f"PresharedKey = {WG_PSK}\nEndpoint = 203.0.113.9:51820\n"
    )
    (etc / "kubernetes").mkdir()
    (etc / "kubernetes" / "kubelet.conf").write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://10.100.1.1:6443\n"
        "  name: default\nusers:\n- name: default-auth\n  user:\n"
        f"    client-certificate-data: {KUBE_CERT_DATA}\n    client-key-data: {KUBE_KEY_DATA}\n"
        f"    token: {KUBE_TOKEN}\n"
    )
    (etc / "containerd").mkdir()
    (etc / "containerd" / "config.toml").write_text(
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n'
        '  default_runtime_name = "nvidia"\n'
        '[plugins."io.containerd.grpc.v1.cri".registry.configs."r.example".auth]\n'
        f'  username = "bob"\n  password = "{REGISTRY_PASSWORD}"\n'
    )
    stray_key = key_pem(pki.ca_key).decode()
    kubelet_log = (
        "2024-05-02T10:00:01+0000 gpu-node-1 kubelet[812]: E0502 10:00:01.1 812 "
        f"round_trippers.go:553] Request Headers: Authorization: Bearer {HEADER_TOKEN}\n"
        "2024-05-02T10:00:02+0000 gpu-node-1 kubelet[812]: I0502 wallet loaded from "
        f"{LOG_WALLET}\n"
    )
    containerd_log = f"2024-05-02T10:00:03+0000 gpu-node-1 containerd[640]: bad key\n{stray_key}"
    daemon_log = f"2024-05-02T10:00:04+0000 gpu-node-1 worldland[900]: GET /me?s={SESSION}\n"
    logs = root.parent / "logs"
    logs.mkdir()
    (logs / "kubelet").write_text(kubelet_log)
    (logs / "containerd").write_text(containerd_log)
    (logs / "worldland-node").write_text(daemon_log)
    tool("journalctl", f'f="{logs}/$2"; [ -f "$f" ] && cat "$f"; exit 0')
    tool(
        "dmesg",
        'echo "[  812.334455] NVRM: Xid (PCI:0000:00:04): 79, pid=2231, name=python3, '
        'GPU has fallen off the bus."',
    )
    body = "".join(stray_key.splitlines()[1:-1])
    node_body = "".join(key_pem(pki.node_key).decode().splitlines()[1:-1])
    return {
        "wallet": WALLET,
        "session": SESSION,
        "wg-private": WG_KEY,
        "wg-psk": WG_PSK,
        "kube-key": KUBE_KEY_DATA,
        "kube-cert": KUBE_CERT_DATA,
        "kube-token": KUBE_TOKEN,
        "header-token": HEADER_TOKEN,
        "registry-password": REGISTRY_PASSWORD,
        "log-wallet": LOG_WALLET[2:],
        "stray-pem": body[:40],
        "node-key": node_body[:40],
    }


class RecordingHost(Host):
    """Remembers every file read, to prove the key files are never even opened."""

    reads: list[str]

    def read_text(self, system_path: str) -> str | None:
        self.reads.append(system_path)
        return super().read_text(system_path)

    def read_bytes(self, system_path: str) -> bytes | None:
        self.reads.append(system_path)
        return super().read_bytes(system_path)


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        out = {}
        for m in tar.getmembers():
            f = tar.extractfile(m)
            assert f is not None
            out[m.name.removeprefix("worldland-bundle/")] = f.read()
        return out


@pytest.fixture
def planted(root: Path, pki: Pki, tool: ToolMaker) -> dict[str, str]:
    return plant(root, pki, tool)


def test_no_planted_secret_survives_anywhere(
    root: Path, bindir: Path, planted: dict[str, str]
) -> None:
    host = RecordingHost(root, search_path=f"{bindir}:/usr/bin:/bin")
    host.reads = []
    bundle = build_bundle(host, HOME, timeout=1.0)
    files = members(bundle.data)
    for name, data in files.items():
        for kind, value in planted.items():
            assert value.encode() not in data, f"{kind} survived in {name}"
    # The configs are there, only their secrets are gone.
    wg = files["files/etc/wireguard/wg0.conf"].decode()
    assert "Endpoint = 203.0.113.9:51820" in wg and "[REDACTED:" in wg
    assert b"default_runtime_name" in files["files/etc/containerd/config.toml"]
    assert b"Xid (PCI:0000:00:04): 79" in files["dmesg-nvidia.txt"]
    assert b"BEGIN CERTIFICATE" in files[f"files{HOME}/certs/node.crt"]
    # Secret files are never archived: the home's files are collected by name, and these
    # are not among the names.
    for secret_file in ("certs/node.key", "private-key.txt", "session.json"):
        assert f"files{HOME}/{secret_file}" not in files


def test_collection_never_opens_key_files(
    root: Path, bindir: Path, planted: dict[str, str]
) -> None:
    """Only `diag certs` opens node.key (to compare public halves); collecting files never does."""
    host = RecordingHost(root, search_path=f"{bindir}:/usr/bin:/bin")
    host.reads = []
    build_bundle(host, HOME, timeout=1.0, probes={})
    assert f"{HOME}/certs/node.key" not in host.reads
    assert not [p for p in host.reads if p.endswith((".key", ".pem"))]


def test_manifest_lists_every_redaction_without_values(host: Host, planted: dict[str, str]) -> None:
    bundle = build_bundle(host, HOME, timeout=1.0)
    files = members(bundle.data)
    manifest = json.loads(files["redactions.json"])
    assert manifest == bundle.redactions
    seen = {(e["member"], e["kind"]) for e in manifest}
    expected = {
        ("files/etc/wireguard/wg0.conf", "wireguard-private-key"),
        ("files/etc/kubernetes/kubelet.conf", "kubeconfig-credential"),
        ("files/etc/containerd/config.toml", "secret-field"),
        ("logs/kubelet.log", "authorization-header"),
        ("logs/kubelet.log", "hex-key"),
        ("logs/containerd.log", "pem-private-key"),
        ("logs/worldland-node.log", "session-token"),
        (f"files{HOME}/node.json", "secret-field"),
    }
    assert expected <= seen
    kube = next(e for e in manifest if e["member"] == "files/etc/kubernetes/kubelet.conf")
    assert kube["count"] == 3  # client-certificate-data, client-key-data, token
    text = files["redactions.json"].decode()
    assert all(v not in text for v in planted.values())


def test_bundle_is_produced_when_probes_fail_and_hang(host: Host, planted: dict[str, str]) -> None:
    release = threading.Event()

    def hangs() -> DiagReport:
        release.wait(30)
        return DiagReport("hang")

    def crashes() -> DiagReport:
        raise RuntimeError(f"exploded near {SESSION}")

    def fails() -> DiagReport:
        return DiagReport("gpu", [fail("gpu.nvml", "NVML not available")])

    try:
        bundle = build_bundle(
            host, HOME, timeout=0.2, probes={"hang": hangs, "crash": crashes, "gpu": fails}
        )
    finally:
        release.set()
    files = members(bundle.data)
    assert "timed out" in json.loads(files["diag/hang.json"])["error"]
    crash = json.loads(files["diag/crash.json"])["error"]
    assert "RuntimeError: exploded" in crash and SESSION not in crash
    assert json.loads(files["diag/gpu.json"])["ok"] is False
    assert "doctor.json" in files and "manifest.json" in files
    manifest = json.loads(files["manifest.json"])
    assert "timed out" in manifest["problems"]["diag/hang.json"]


def test_size_caps_truncate_logs_and_omit_what_does_not_fit(
    root: Path, host: Host, tool: ToolMaker
) -> None:
    big = root.parent / "big.log"
    big.write_text("".join(f"line {i} kubelet chatter\n" for i in range(20000)) + "LAST LINE\n")
    tool("journalctl", f'[ "$2" = kubelet ] && cat "{big}"; exit 0')
    bundle = build_bundle(host, HOME, timeout=0.5, probes={}, max_member=4096, max_total=40000)
    files = members(bundle.data)
    log = files["logs/kubelet.log"]
    assert len(log) <= 4096 + 64
    assert log.startswith(b"[truncated: first ") and log.rstrip().endswith(b"LAST LINE")
    assert "logs/kubelet.log" in bundle.truncated
    assert sum(len(v) for k, v in files.items() if k != "manifest.json") <= 40000 + 4096
    assert "redactions.json" in files


def test_manifests_survive_a_full_archive(root: Path, host: Host, tool: ToolMaker) -> None:
    """When host data uses up the total cap, manifest.json and redactions.json are still there
    and say what was left out; without them support cannot tell a cut bundle from a whole one."""
    tool("journalctl", "echo 'kubelet chatter that fills the archive'; exit 0")
    bundle = build_bundle(host, HOME, timeout=0.5, probes={}, max_total=200)
    files = members(bundle.data)
    assert "doctor.json" in bundle.omitted and "versions.txt" in bundle.omitted
    manifest = json.loads(files["manifest.json"])
    assert manifest["omitted"] == bundle.omitted
    assert json.loads(files["redactions.json"]) == bundle.redactions


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ("/home/p/.worldland/private-key.txt", True),
        ("/home/p/.worldland/session.json", True),
        ("/home/p/.worldland/certs/node.key", True),
        ("/var/lib/kubelet/pki/kubelet-client-current.pem", True),
        ("/etc/wireguard/privatekey", True),
        ("/home/p/.worldland/certs/node.crt", False),
        ("/etc/wireguard/wg0.conf", False),
    ],
)
def test_secret_files_are_refused_by_name(path: str, refused: bool) -> None:
    assert never_bundled(path) is refused


def test_cli_writes_a_0600_archive_and_reports_it(
    root: Path,
    bindir: Path,
    tmp_path: Path,
    planted: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WORLDLAND_HOME", HOME)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    out = tmp_path / "b.tar.gz"
    res = CliRunner().invoke(
        app, ["diag", "bundle", "--root", str(root), "-o", str(out), "--timeout", "1", "--json"]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["path"] == str(out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "logs/kubelet.log" in members(out.read_bytes())
    assert all(v not in res.stdout for v in planted.values())


def test_joins_journal_and_step_logs_are_bundled_but_never_its_backups(
    root: Path, bindir: Path, planted: dict[str, str]
) -> None:
    """Support reads what join did and printed; the backups are the host's own files."""
    state = root / "var/lib/worldland"
    for journal in ("join", "join.reset-20261128T120000Z"):
        (state / journal / "logs").mkdir(parents=True)
        (state / journal / "steps.jsonl").write_text('{"seq": 1, "event": "begin"}\n')
        (state / journal / "logs" / "0001-kernel.modules.log").write_text("$ modprobe -a\n")
        (state / journal / "backups").mkdir()
        (state / journal / "backups" / "0002-wg0.conf").write_text(f"PrivateKey = {WG_KEY}\n")
    host = RecordingHost(root, search_path=f"{bindir}:/usr/bin:/bin")
    host.reads = []
    files = members(build_bundle(host, HOME, timeout=1.0, probes={}).data)
    for journal in ("join", "join.reset-20261128T120000Z"):
        where = f"files/var/lib/worldland/{journal}"
        assert files[f"{where}/steps.jsonl"].startswith(b'{"seq": 1')
        assert files[f"{where}/logs/0001-kernel.modules.log"] == b"$ modprobe -a\n"
        assert f"{where}/backups/0002-wg0.conf" not in files
    assert not [p for p in host.reads if "/backups/" in p]


ADMIN_TOKEN = "q3Vw8kZbN1rT5yHcX0pLmA7sD2fG9jK4uE6iO_-RtYw"  # secrets.token_urlsafe(32)
SEED = "legal winner thank year wave sausage worth useful legal winner thank yellow"  # BIP-39
SLACK = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
GITHUB = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
HUB = "https://127.0.0.1:9"  # refused at once: the probes fail fast


def plant_in_home(root: Path) -> None:
    """What a person may leave in WORLDLAND_HOME beside the CLI's own files."""
    home = root / HOME.lstrip("/")
    home.mkdir(parents=True, exist_ok=True)
    (home / "admin-token").write_text(ADMIN_TOKEN + "\n")
    (home / "hub-admin.txt").write_text(f"{ADMIN_TOKEN}\n")
    (home / "wallet-backup.txt").write_text(SEED + "\n")
    (home / "slack-webhook.txt").write_text(SLACK + "\n")
    (home / "my-api-token").write_text("nothing to see\n")


def test_only_known_files_are_collected_from_the_home(
    root: Path, bindir: Path, planted: dict[str, str]
) -> None:
    """A hub admin token, a seed phrase and a Slack token left in WORLDLAND_HOME survived
    when the whole folder was bundled; now only the CLI's own files are read from it."""
    plant_in_home(root)
    host = RecordingHost(root, search_path=f"{bindir}:/usr/bin:/bin")
    host.reads = []
    bundle = build_bundle(host, HOME, timeout=1.0, probes={})
    files = members(bundle.data)
    for secret in (ADMIN_TOKEN, SEED, SLACK):
        assert not [n for n, data in files.items() if secret.encode() in data], secret
    home_members = sorted(n for n in files if n.startswith(f"files{HOME}/"))
    assert home_members == [
        f"files{HOME}/certs/ca.crt",
        f"files{HOME}/certs/node.crt",
        f"files{HOME}/config.toml",
        f"files{HOME}/node.json",
    ]
    planted_names = ("admin-token", "hub-admin.txt", "wallet-backup.txt", "slack-webhook.txt")
    assert not [p for p in host.reads if p.endswith((*planted_names, "my-api-token"))]


def test_each_kind_of_secret_inside_a_collected_file_is_redacted(
    root: Path, host: Host, tool: ToolMaker, planted: dict[str, str]
) -> None:
    log = root.parent / "logs" / "kubelet"
    log.write_text(
        f"recovery phrase: {SEED}\n"
        "numbered: " + " ".join(f"{n}. {w}" for n, w in enumerate(SEED.split(), 1)) + "\n"
        f"notify {SLACK} and {GITHUB}\n"
        f"WORLDLAND_ADMIN_TOKEN={ADMIN_TOKEN}\n"
        f"curl -H 'Authorization: Bearer {ADMIN_TOKEN}' https://hub/v1/admin/pods\n"
        "kubelet started: the node is Ready, 1 GPU, able to schedule\n"
    )
    files = members(build_bundle(host, HOME, timeout=1.0, probes={}).data)
    text = files["logs/kubelet.log"].decode()
    for secret in (SEED, SLACK, GITHUB, ADMIN_TOKEN, "legal winner thank"):
        assert secret not in text, secret
    assert text.count("[REDACTED:seed-phrase]") == 2
    assert text.count("[REDACTED:token-prefix]") == 2
    assert "kubelet started: the node is Ready, 1 GPU, able to schedule" in text
    kinds = {(e["member"], e["kind"]) for e in json.loads(files["redactions.json"])}
    assert {("logs/kubelet.log", "seed-phrase"), ("logs/kubelet.log", "token-prefix")} <= kinds


def test_the_bundle_stays_useful_with_a_session(
    root: Path, bindir: Path, tool: ToolMaker, planted: dict[str, str]
) -> None:
    """Redact values, not what surrounds them: with a live session the hub's URL, the
    versions and the findings stay readable where the runbook sends support to read them."""
    home = root / HOME.lstrip("/")
    config.set_value("hub", HUB)  # what the probes read (the live home's config.toml)
    (home / "config.toml").write_text(f'hub = "{HUB}"\n')
    (home / "node.json").write_text(json.dumps({"node_id": "n-1", "hub": HUB, "host": "10.0.0.7"}))
    session = {
        "token": SESSION,
        "address": "0xabc",
        "hub": HUB,
        "expires_at": "2030-01-01T00:00:00Z",
    }
    (home / "session.json").write_text(json.dumps({"sessions": {HUB: session}}))
    (home / "api-token").write_text("a file whose name says token\n")  # not collected
    tool("uname", "echo 'Linux gpu-node-1 5.15.0-113-generic x86_64 GNU/Linux'")
    host = Host(root, search_path=f"{bindir}:/usr/bin:/bin")
    bundle = build_bundle(host, HOME, timeout=1.0)
    files = members(bundle.data)
    assert f'hub = "{HUB}"' in files[f"files{HOME}/config.toml"].decode()
    assert json.loads(files[f"files{HOME}/node.json"])["hub"] == HUB
    network = json.loads(files["diag/network.json"])
    assert network["data"]["hub"] == HUB
    versions = files["versions.txt"].decode()
    assert versions.startswith("worldland ") and "5.15.0-113-generic" in versions
    doctor = json.loads(files["doctor.json"])
    assert {c["id"] for c in doctor["checks"]} >= {"gpu.driver", "containerd.installed"}
    assert all(c["status"] in ("ok", "warn", "fail", "skip") for c in doctor["checks"])
    for name, data in files.items():
        if name.endswith(".json"):
            json.loads(data)  # every JSON member parses, the manifest included
        assert SESSION.encode() not in data, name
    assert "[REDACTED" not in files["manifest.json"].decode()


def test_a_member_named_token_keeps_the_manifest_json() -> None:
    from worldland_cli.diag.redact import Redactor

    redactor = Redactor()
    doc = {"members": {"files/home/.worldland/api-token": 41}, "token": "abc123456", "n": 1}
    clean = redactor.redact_json("manifest.json", doc)
    assert clean == {
        "members": {"files/home/.worldland/api-token": 41},
        "token": "[REDACTED:secret-field]",
        "n": 1,
    }
    assert json.loads(json.dumps(clean)) == clean
