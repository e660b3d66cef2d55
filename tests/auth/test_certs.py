"""Node certificates: status, the one-third renewal rule, key reuse, and crash safety.

The status and renewal arithmetic run on certificates made here; bootstrap, interruption and
refusals run against the real hub.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.auth.conftest import cli, files_under, hub_args
from tests.support.hub import RunningHub
from worldland_cli.auth.certs import CertError, cert_status, ensure_certificate, renew_after
from worldland_cli.auth.session import NotLoggedIn, load_session
from worldland_cli.auth.wallet import WalletError
from worldland_cli.config import load
from worldland_cli.host import Host
from worldland_cli.hubclient import HubEndpoint

START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_cert_dir(directory: Path, node_id: str, days: int = 9) -> ec.EllipticCurvePrivateKey:
    """A CA, and a node cert valid START .. START+days for a fresh key, as the hub lays out."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test hub CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(START - dt.timedelta(days=1))
        .not_valid_after(START + dt.timedelta(days=365))
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_id)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(0xABC)
        .not_valid_before(START)
        .not_valid_after(START + dt.timedelta(days=days))
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "node.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "node.key").write_bytes(_pem_key(key))
    (directory / "node.key").chmod(0o600)
    return key


def test_status_reports_subject_expiry_and_key_match(tmp_path: Path) -> None:
    make_cert_dir(tmp_path, "node-1")
    st = cert_status(tmp_path, now=START + dt.timedelta(days=1))
    assert st.subject == "CN=node-1" and st.node_id == "node-1" and st.serial == "abc"
    assert st.not_after == START + dt.timedelta(days=9)
    assert st.key_matches is True and st.issued_by_ca is True and not st.expired
    (tmp_path / "node.key").write_bytes(_pem_key(ec.generate_private_key(ec.SECP256R1())))
    assert cert_status(tmp_path, now=START).key_matches is False
    make_cert_dir(tmp_path / "other", "node-1")
    (tmp_path / "ca.crt").write_bytes((tmp_path / "other" / "ca.crt").read_bytes())
    assert cert_status(tmp_path, now=START).issued_by_ca is False


def test_renewal_is_due_when_a_third_of_the_lifetime_is_left(tmp_path: Path) -> None:
    make_cert_dir(tmp_path, "node-1", days=9)
    assert renew_after(START, START + dt.timedelta(days=9)) == START + dt.timedelta(days=6)
    just_before = START + dt.timedelta(days=6) - dt.timedelta(seconds=1)
    assert not cert_status(tmp_path, now=just_before).needs_renewal
    assert cert_status(tmp_path, now=START + dt.timedelta(days=6)).needs_renewal
    late = cert_status(tmp_path, now=START + dt.timedelta(days=9))
    assert late.expired and late.needs_renewal


def test_certs_status_cli_exit_codes(tmp_path: Path) -> None:
    missing = cli("certs", "status", "--cert-dir", str(tmp_path / "none"))
    assert missing.exit_code == 1 and "run `worldland register`" in missing.stdout
    make_cert_dir(tmp_path, "node-1", days=1)  # expired long before the real clock's now
    expired = cli("certs", "status", "--cert-dir", str(tmp_path), "--json")
    assert expired.exit_code == 1
    doc = json.loads(expired.stdout)
    assert doc["expired"] is True and doc["usable"] is False and doc["key_matches"] is True


def test_loose_node_key_is_refused(tmp_path: Path) -> None:
    make_cert_dir(tmp_path, "node-1")
    (tmp_path / "node.key").chmod(0o644)
    with pytest.raises(WalletError) as info:
        cert_status(tmp_path)
    assert info.value.hint == f"chmod 600 {tmp_path / 'node.key'}"


def test_garbage_node_key_says_how_to_recover(tmp_path: Path) -> None:
    make_cert_dir(tmp_path, "node-1")
    (tmp_path / "node.key").write_text("garbage")
    with pytest.raises(CertError, match="not an unencrypted PEM private key") as info:
        cert_status(tmp_path)
    assert "worldland certs bootstrap" in (info.value.hint or "")


@pytest.fixture
def registered(plain_hub: RunningHub, worldland_home: Path) -> str:
    """A wallet, a session and a registered node (no NVML: the overrides name the GPU)."""
    assert cli("wallet", "new").exit_code == 0
    result = cli(
        "register", *hub_args(plain_hub), "--host", f"c-{uuid.uuid4().hex[:8]}",
        "--gpu-type", "Tesla T4", "--memory-gb", "16",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    node_id: str = json.loads((worldland_home / "node.json").read_text())["node_id"]
    return node_id


def test_interrupted_bootstrap_leaves_no_half_file_and_reuses_the_key(
    plain_hub: RunningHub,
    registered: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session = load_session(plain_hub.url)
    assert session is not None
    endpoint = HubEndpoint.from_config(load(), plain_hub.url)
    cert_dir = tmp_path / "fresh-certs"
    real_write = Host.write_atomic

    def crash_at_cert(self: Host, path: str, data: bytes | str, mode: int = 0o644) -> None:
        if path.endswith("node.crt"):
            raise KeyboardInterrupt  # the power went out between the key and the certificate
        real_write(self, path, data, mode)

    monkeypatch.setattr(Host, "write_atomic", crash_at_cert)
    with pytest.raises(KeyboardInterrupt):
        ensure_certificate(endpoint, registered, cert_dir=cert_dir, token=session.token)
    assert files_under(cert_dir) == ["ca.crt", "node.key"]
    assert (cert_dir / "node.key").stat().st_mode & 0o777 == 0o600
    key = serialization.load_pem_private_key((cert_dir / "node.key").read_bytes(), None)
    monkeypatch.setattr(Host, "write_atomic", real_write)

    real_replace = os.replace
    calls = {"n": 0}

    def crash_in_rename(src: str, dst: str) -> None:
        calls["n"] += 1
        raise KeyboardInterrupt  # killed inside the atomic write itself

    monkeypatch.setattr(os, "replace", crash_in_rename)
    with pytest.raises(KeyboardInterrupt):
        ensure_certificate(endpoint, registered, cert_dir=cert_dir, token=session.token)
    assert calls["n"] == 1
    assert files_under(cert_dir) == ["ca.crt", "node.key"]  # no .tmp left behind
    monkeypatch.setattr(os, "replace", real_replace)

    outcome = ensure_certificate(endpoint, registered, cert_dir=cert_dir, token=session.token)
    assert outcome.action == "issued" and outcome.status.key_matches is True
    cert = x509.load_pem_x509_certificate((cert_dir / "node.crt").read_bytes())
    assert cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_bootstrap_without_login_or_hub_writes_nothing(
    plain_hub: RunningHub, registered: str, tmp_path: Path
) -> None:
    endpoint = HubEndpoint.from_config(load(), plain_hub.url)
    with pytest.raises(NotLoggedIn, match="needs a login"):
        ensure_certificate(endpoint, registered, cert_dir=tmp_path / "a")
    assert files_under(tmp_path / "a") == []
    dead = HubEndpoint.from_config(load(), "http://127.0.0.1:9")
    from worldland_cli.hubclient import HubUnreachable

    with pytest.raises(HubUnreachable):
        ensure_certificate(dead, registered, cert_dir=tmp_path / "b", token="t", retries=0)
    assert files_under(tmp_path / "b") == []


def test_certs_cli_bootstrap_and_renew(plain_hub: RunningHub, registered: str) -> None:
    kept = cli("certs", "bootstrap", *hub_args(plain_hub))
    assert kept.exit_code == 0, kept.output
    assert f"Certificate for node {registered} is valid until" in kept.stdout
    before = json.loads(cli("certs", "status", "--json").stdout)["serial"]
    renewed = cli("certs", "renew", *hub_args(plain_hub), "--json")
    assert renewed.exit_code == 0, renewed.output
    doc = json.loads(renewed.stdout)
    assert doc["action"] == "renewed" and doc["serial"] != before and doc["key_matches"]
