"""End to end against the real hub (python -m hub_stub) over HTTP and TLS, through the CLI.

wallet new -> login -> register (which bootstraps the certificate) -> certs status -> whoami,
then the issued certificate is used for mutual TLS; plus every refusal the issue names.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import socket
import ssl
import traceback
import uuid
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.auth.conftest import (
    PLANTED_ADDRESS,
    PLANTED_KEY,
    cli,
    files_under,
    hub_args,
    write_key,
)
from tests.support.hub import RunningHub
from worldland_cli.auth.session import load_session
from worldland_cli.hubclient import HubEndpoint

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def mtls_client(hub: RunningHub, cert: Path, key: Path) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(hub.ca_cert))
    context.load_cert_chain(str(cert), str(key))
    return httpx.Client(base_url=hub.url, verify=context, timeout=10)


def self_made_cert(directory: Path, common_name: str) -> tuple[Path, Path]:
    """A P-256 certificate that names the node but was signed by nobody the hub knows."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "fake.crt", directory / "fake.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_wallet_login_register_certs_whoami(
    any_hub: RunningHub, worldland_home: Path, nvml_t4: str
) -> None:
    hub = any_hub
    created = cli("wallet", "new", "--json")
    assert created.exit_code == 0, created.output
    address = json.loads(created.stdout)["address"]

    login = cli("login", *hub_args(hub))
    assert login.exit_code == 0, login.output
    assert "SIWE authentication successful" in login.stdout
    assert (worldland_home / "session.json").stat().st_mode & 0o777 == 0o600

    node_host = f"gpu-{uuid.uuid4().hex[:8]}.example"
    register = cli("register", *hub_args(hub), "--host", node_host)
    assert register.exit_code == 0, register.output
    assert "GPU 0: Tesla T4, 15 GB (detected by NVML)" in register.stdout
    assert f"Node address: {node_host} (from --host)" in register.stdout
    assert "Price: 1000000000 wei per GPU-second (the default)" in register.stdout
    node_id = re.search(rf"Node registered: ({UUID})", register.stdout)
    assert node_id, register.stdout
    certs = worldland_home / "certs"
    assert f"Bootstrap certificates saved to {certs}" in register.stdout
    assert (certs / "node.key").stat().st_mode & 0o777 == 0o600
    saved = json.loads((worldland_home / "node.json").read_text())
    assert saved["node_id"] == node_id.group(1) and saved["host"] == node_host

    again = cli("register", *hub_args(hub), "--host", node_host, "--json")
    assert again.exit_code == 0, again.output
    doc = json.loads(again.stdout)
    assert doc["node_id"] == node_id.group(1) and doc["created"] is False
    assert doc["certificates"]["action"] == "kept"
    assert doc["price_per_sec_wei"] == "1000000000"
    assert doc["source"] == {
        "gpu_type": "nvml",
        "memory_gb": "nvml",
        "host": "flag",
        "price_per_sec": "default",
    }
    assert doc["gpus"] == [{"name": "Tesla T4", "memory_mib": 15360, "uuid": nvml_t4}]

    status = cli("certs", "status", "--json")
    assert status.exit_code == 0, status.output
    st = json.loads(status.stdout)
    assert st["usable"] and st["key_matches"] and st["issued_by_ca"]
    assert st["subject"] == f"CN={node_id.group(1)}" and st["node_id"] == node_id.group(1)

    whoami = cli("whoami", "--hub", hub.url, "--json")
    assert whoami.exit_code == 0, whoami.output
    me = json.loads(whoami.stdout)
    assert me["address"] == address and me["hub"] == hub.url and me["expired"] is False
    assert "token" not in me

    with hub.client() as client:
        saved = load_session(hub.url)
        assert saved is not None
        token = saved.token
        listed = client.get("/v1/nodes", headers={"Authorization": f"Bearer {token}"}).json()
    assert [n["host"] for n in listed["nodes"]] == [node_host]

    if hub.tls:
        with mtls_client(hub, certs / "node.crt", certs / "node.key") as node:
            beat = node.post(f"/v1/nodes/{node_id.group(1)}/heartbeat", json={})
        assert beat.status_code == 200, beat.text
        fake_cert, fake_key = self_made_cert(worldland_home / "fake", node_id.group(1))
        # The hub CA did not sign it, so the TLS handshake itself fails (no HTTP answer).
        with (
            pytest.raises(httpx.TransportError),
            mtls_client(hub, fake_cert, fake_key) as impostor,
        ):
            impostor.post(f"/v1/nodes/{node_id.group(1)}/heartbeat", json={})


@pytest.mark.usefixtures("nvml_t4")
def test_certificate_renewal_over_mtls_needs_no_login(
    tls_hub: RunningHub, worldland_home: Path
) -> None:
    from worldland_cli.auth.certs import cert_status, ensure_certificate
    from worldland_cli.auth.session import clear_session
    from worldland_cli.config import load

    assert cli("wallet", "new").exit_code == 0
    register = cli("register", *hub_args(tls_hub), "--host", f"h-{uuid.uuid4().hex[:8]}")
    assert register.exit_code == 0, register.output
    assert "SIWE authentication successful" in register.stdout  # silent login with the key
    node_id = json.loads((worldland_home / "node.json").read_text())["node_id"]
    before = cert_status()
    key_bytes = (worldland_home / "certs" / "node.key").read_bytes()
    assert clear_session(tls_hub.url) is not None
    endpoint = HubEndpoint.from_config(load(), tls_hub.url, str(tls_hub.ca_cert))
    assert before.renew_after is not None
    kept = ensure_certificate(endpoint, node_id, now=before.renew_after - dt.timedelta(seconds=5))
    assert kept.action == "kept" and kept.status.serial == before.serial
    later = before.renew_after + dt.timedelta(seconds=5)
    renewed = ensure_certificate(endpoint, node_id, now=later)
    assert renewed.action == "renewed" and renewed.status.serial != before.serial
    assert renewed.status.key_matches is True and renewed.status.issued_by_ca is True
    assert not cert_status().needs_renewal  # judged by the real clock: a fresh certificate
    assert (worldland_home / "certs" / "node.key").read_bytes() == key_bytes


def test_wrong_siwe_domain_names_both_and_the_remedy(
    plain_hub: RunningHub, worldland_home: Path
) -> None:
    assert cli("wallet", "new").exit_code == 0
    result = cli("login", *hub_args(plain_hub), "--siwe-domain", "35.193.237.225:3000")
    assert result.exit_code == 4
    assert (
        "the configured SIWE domain 35.193.237.225:3000 is not the hub's address "
        f"{plain_hub.siwe_domain}; nothing was signed"
    ) in " ".join(result.stderr.split())
    assert "--siwe-domain, WORLDLAND_SIWE_DOMAIN" in " ".join(result.stderr.split())
    assert not (worldland_home / "session.json").exists()


@pytest.mark.parametrize(
    ("text", "mode", "expected"),
    [
        (PLANTED_KEY, 0o644, "chmod 600"),
        ("not a key at all", 0o600, "expected 64 hex characters"),
        (PLANTED_KEY[:-2] + "zz", 0o600, "not hexadecimal"),
    ],
)
def test_bad_key_files_are_refused_before_any_request(
    plain_hub: RunningHub, worldland_home: Path, text: str, mode: int, expected: str
) -> None:
    key = write_key(worldland_home / "private-key.txt", text, mode)
    result = cli("login", *hub_args(plain_hub))
    assert result.exit_code == 4
    assert expected in result.stderr and str(key) in result.stderr
    assert files_under(worldland_home) == ["private-key.txt"]


def test_unreachable_hub_is_clear_and_leaves_nothing(worldland_home: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    write_key(worldland_home / "private-key.txt", PLANTED_KEY)
    for args in (["login"], ["register", "--gpu-type", "T4", "--memory-gb", "16"]):
        result = cli(*args, "--hub", url)
        assert result.exit_code == 3, result.output
        assert f"cannot reach the hub at {url}" in result.stderr
        assert "worldland diag network" in result.stderr
        assert files_under(worldland_home) == ["private-key.txt"]


def test_tls_hub_without_its_ca_says_hub_ca(tls_hub: RunningHub, worldland_home: Path) -> None:
    write_key(worldland_home / "private-key.txt", PLANTED_KEY)
    result = cli("login", "--hub", tls_hub.url, "--json")
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert "cannot verify the TLS certificate" in doc["error"] and "--hub-ca" in doc["hint"]


@pytest.mark.usefixtures("no_nvml")
def test_register_without_gpu_or_override_is_refused(
    plain_hub: RunningHub, worldland_home: Path
) -> None:
    write_key(worldland_home / "private-key.txt", PLANTED_KEY)
    result = cli("register", *hub_args(plain_hub), "--gpu-type", "Tesla T4")
    assert result.exit_code == 1
    assert "no GPU to register: NVML is unavailable" in result.stderr
    assert "--memory-gb" in result.stderr
    assert files_under(worldland_home) == ["private-key.txt"]
    manual = cli(
        "register", *hub_args(plain_hub), "--gpu-type", "RTX 4090", "--memory-gb", "24", "--json"
    )
    assert manual.exit_code == 0, manual.output
    gpu = json.loads(manual.stdout)["gpus"][0]
    assert gpu["name"] == "RTX 4090" and gpu["memory_mib"] == 24 * 1024


def test_register_says_where_each_value_came_from(
    plain_hub: RunningHub, worldland_home: Path, nvml_t4: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_key(worldland_home / "private-key.txt", PLANTED_KEY)
    assert cli("config", "set", "price_per_sec", "2000").exit_code == 0
    monkeypatch.setenv("WORLDLAND_MEMORY_GB", "16")
    typed = cli("register", *hub_args(plain_hub), "--gpu-type", "NVIDIA T4 (typed)")
    assert typed.exit_code == 0, typed.output
    assert (
        "GPU 0: NVIDIA T4 (typed) (from --gpu-type), 16 GB (from WORLDLAND_MEMORY_GB)"
        in typed.stdout
    )
    assert "(the address this machine reaches the hub from)" in typed.stdout
    config_file = worldland_home / "config.toml"
    assert f"Price: 2000 wei per GPU-second (from {config_file})" in typed.stdout
    doc = json.loads(
        cli("register", *hub_args(plain_hub), "--gpu-type", "NVIDIA T4", "--json").stdout
    )
    assert doc["source"] == {
        "gpu_type": "flag",
        "memory_gb": "env",
        "host": "detected",
        "price_per_sec": "file",
    }
    assert doc["gpus"] == [{"name": "NVIDIA T4", "memory_mib": 16 * 1024, "uuid": nvml_t4}]


def test_expired_session_without_key_file_says_run_login(
    plain_hub: RunningHub, worldland_home: Path
) -> None:
    worldland_home.mkdir(parents=True)
    (worldland_home / "session.json").write_text(
        json.dumps(
            {
                "token": "stale",
                "address": PLANTED_ADDRESS,
                "hub": plain_hub.url,
                "expires_at": "2020-01-01T00:00:00Z",
            }
        )
    )
    whoami = cli("whoami", "--hub", plain_hub.url)
    assert whoami.exit_code == 4
    assert "expired at 2020-01-01T00:00:00Z" in whoami.stderr
    assert "run `worldland login`" in whoami.stderr
    register = cli("register", *hub_args(plain_hub), "--gpu-type", "T4", "--memory-gb", "16")
    assert register.exit_code == 4 and "run `worldland login`" in register.stderr


def test_expired_session_with_key_file_logs_in_silently(
    plain_hub: RunningHub, worldland_home: Path
) -> None:
    write_key(worldland_home / "private-key.txt", PLANTED_KEY)
    stale = {
        "token": "stale",
        "address": PLANTED_ADDRESS,
        "hub": plain_hub.url,
        "expires_at": "2020-01-01T00:00:00Z",
    }
    (worldland_home / "session.json").write_text(json.dumps(stale))
    result = cli(
        "register", *hub_args(plain_hub), "--host", f"s-{uuid.uuid4().hex[:8]}",
        "--gpu-type", "T4", "--memory-gb", "16",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "SIWE authentication successful" in result.stdout
    fresh = load_session(plain_hub.url)
    assert fresh is not None and fresh.token != "stale" and fresh.address == PLANTED_ADDRESS
    assert not fresh.expired()


@pytest.mark.usefixtures("nvml_t4")
def test_planted_key_never_appears_anywhere(
    any_hub: RunningHub, worldland_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key_file = write_key(worldland_home / "private-key.txt", f"0x{PLANTED_KEY}\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    runs = [
        cli("wallet", "address"),
        cli("login", *hub_args(any_hub)),
        cli("register", *hub_args(any_hub), "--host", f"leak-{uuid.uuid4().hex[:8]}"),
        cli("whoami", "--json"),
        cli("config", "show"),
        cli("config", "show", "--json"),
        cli("certs", "status", "--json"),
        cli("login", *hub_args(any_hub), "--siwe-domain", "wrong.example"),
        cli("login", "--hub", dead),
        cli("wallet", "new", str(key_file)),
    ]
    key_file.chmod(0o644)
    runs.append(cli("login", *hub_args(any_hub)))
    assert runs[1].exit_code == 0 and runs[2].exit_code == 0, runs[2].output
    assert PLANTED_ADDRESS in runs[0].stdout
    haystack = [r.output for r in runs]
    haystack += ["".join(traceback.format_exception(r.exception)) for r in runs if r.exception]
    haystack.append(caplog.text)
    haystack.append(any_hub.log.read_text(errors="replace"))
    for name in files_under(worldland_home):
        if name != "private-key.txt":
            haystack.append((worldland_home / name).read_text(errors="replace"))
    text = "\n".join(haystack)
    assert len(text) > 1000
    for needle in (PLANTED_KEY, PLANTED_KEY.upper(), PLANTED_KEY[:16], PLANTED_KEY[-16:]):
        assert needle not in text
