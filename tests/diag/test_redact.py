"""The redactor on each kind of secret, in the shapes they appear in logs and configs."""

from __future__ import annotations

import json

import pytest

from worldland_cli.diag.redact import Redactor

WALLET = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


@pytest.mark.parametrize(
    ("text", "secret", "kind"),
    [
        ("GET /v1/nodes Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc", "eyJhbGciOiJIUzI1NiJ9",
         "authorization-header"),
        ("headers=map[Authorization:[Basic dXNlcjpwYXNzd29yZA==]]", "dXNlcjpwYXNzd29yZA",
         "authorization-header"),
        ("retrying with bearer s3cr3t-t0k3n-value", "s3cr3t-t0k3n-value", "bearer-token"),
        ('{"token": "tok_9f8e7d6c5b4a", "node": "n1"}', "tok_9f8e7d6c5b4a", "secret-field"),
        ("wallet key=0x" + WALLET, WALLET, "hex-key"),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
         "wJalrXUtnFEMI/K7MDENG", "secret-field"),
        ("aws_secret_key = 'Kx9vT2mLq8Zr4Wn7'", "Kx9vT2mLq8Zr4Wn7", "secret-field"),
        ("> X-Api-Key: ak_live_51Hq8Zr4Wn7", "ak_live_51Hq8Zr4Wn7", "secret-field"),
        ("WORLDLAND_PRIVATE-KEY=deadbeefcafe1234", "deadbeefcafe1234", "secret-field"),
        ("[Interface]\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n",
         "yAnz5TF+lXXJte14tji3zlMNq", "wireguard-private-key"),
        ("users:\n- name: n\n  user:\n    client-key-data: LS0tLS1CRUdJTiBFQyBQUklWQVRF\n",
         "LS0tLS1CRUdJTiBFQyBQUklWQVRF", "kubeconfig-credential"),
        ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk\n-----END EC PRIVATE KEY-----",
         "MHcCAQEEIBkg4LVWM9nuwNSk", "pem-private-key"),
        ("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGXk3s8BCAC5\n"
         "-----END PGP PRIVATE KEY BLOCK-----", "lQOYBGXk3s8BCAC5", "pem-private-key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
         "-----END OPENSSH PRIVATE KEY-----", "b3BlbnNzaC1rZXktdjEAAAAA", "pem-private-key"),
        ("level=info msg=\"session eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJub2RlIn0.c2lnbmF0dXJl\"",
         "eyJzdWIiOiJub2RlIn0", "jwt"),
        ("kubeadm join 10.100.1.1:6443 --token abcdef.0123456789abcdef --discovery-token-ca",
         "abcdef.0123456789abcdef", "kubeadm-token"),
        ("aws_access_key_id AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "aws-access-key-id"),
        ("proxy https://bob:s3cr3t-pw@proxy.local:3128 refused", "s3cr3t-pw", "url-password"),
        ("key dump cut short\n-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEG\n",
         "MIGHAgEAMBMGByqGSM49AgEG", "pem-private-key"),
    ],
)  # fmt: skip
def test_each_kind_is_removed_and_counted(text: str, secret: str, kind: str) -> None:
    r = Redactor()
    out = r.redact("logs/x.log", text)
    assert secret not in out
    assert f"[REDACTED:{kind}]" in out
    assert {"member": "logs/x.log", "kind": kind, "count": 1} in r.manifest()


def test_json_stays_parseable_and_ordinary_text_survives() -> None:
    r = Redactor()
    doc = json.dumps({"access_token": "abcdefgh12345678", "image": "nginx@sha256:" + "ab" * 32})
    out = json.loads(r.redact("m.json", doc))
    assert out["access_token"] == "[REDACTED:secret-field]"
    assert out["image"] == "nginx@sha256:[REDACTED:hex-key]"
    assert r.redact("m", "kubelet started, node Ready") == "kubelet started, node Ready"
    ordinary = "GET https://hub.example:8443/v1/nodes host=gpu-node-1.example.com v1.29.3"
    assert r.redact("m", ordinary) == ordinary


def test_a_wallet_key_behind_a_sha256_prefix_is_removed() -> None:
    """The prefix says nothing about the 64 hex digits after it; a key there must not leak."""
    r = Redactor()
    out = r.redact("logs/x.log", f"pulled layer sha256:{WALLET} and key=sha256:0x{WALLET}")
    assert WALLET not in out
    assert out.count("[REDACTED:hex-key]") == 2


def test_known_values_are_scrubbed_in_any_context() -> None:
    r = Redactor()
    r.add_known("session-token", ["wl_sess_Zx81Qp0aLmN3", "short"])
    out = r.redact("logs/daemon.log", "url=https://hub/x?t=wl_sess_Zx81Qp0aLmN3&short=1")
    assert "wl_sess_Zx81Qp0aLmN3" not in out
    assert "short=1" in out  # values under 8 characters are not scrubbed blindly
    assert r.manifest() == [{"member": "logs/daemon.log", "kind": "session-token", "count": 1}]


def test_manifest_never_holds_values() -> None:
    r = Redactor()
    r.redact("a", "Authorization: Bearer " + WALLET)
    assert WALLET not in json.dumps(r.manifest())
