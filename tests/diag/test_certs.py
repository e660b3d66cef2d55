"""`diag certs` against real certificates made with cryptography."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.pki import Pki, issue
from worldland_cli import config
from worldland_cli.diag.base import Status
from worldland_cli.diag.certs import probe_certs
from worldland_cli.host import Host
from worldland_cli.main import app

HOME = "/home/p/.worldland"
CERTS = f"{HOME}/certs"  # the default cert_dir under that home


def statuses(host: Host) -> dict[str, Status]:
    return {c.id: c.status for c in probe_certs(host, CERTS).checks}


def test_good_identity_passes_and_reports_sans(root: Path, host: Host, pki: Pki) -> None:
    pki.write_node_certs(root / CERTS.lstrip("/"))
    report = probe_certs(host, CERTS)
    by_id = {c.id: c for c in report.checks}
    assert {k: c.status for k, c in by_id.items()} == {
        "certs.node": Status.OK,
        "certs.ca": Status.OK,
        "certs.chain": Status.OK,
        "certs.key-mode": Status.OK,
        "certs.key": Status.OK,
    }
    assert by_id["certs.node"].details["sans"] == ["gpu-node-1"]
    assert "PRIVATE" not in json.dumps(report.to_dict())


def test_foreign_ca_wrong_key_and_open_mode_are_each_named(
    root: Path, host: Host, pki: Pki
) -> None:
    other_key, other_ca = issue("other-hub-ca", None, pki.ca.subject, ca=True)
    _, foreign = issue("gpu-node-1", other_key, other_ca.subject)
    certs = root / CERTS.lstrip("/")
    pki.write_node_certs(certs, node=foreign)  # the key is the original node key: no match
    (certs / "node.key").chmod(0o644)
    report = probe_certs(host, CERTS)
    by_id = {c.id: c for c in report.checks}
    assert by_id["certs.chain"].status is Status.FAIL
    assert by_id["certs.key"].status is Status.FAIL
    assert by_id["certs.key-mode"].status is Status.FAIL
    assert by_id["certs.key-mode"].remedy == f"chmod 600 {HOME}/certs/node.key"


@pytest.mark.parametrize(
    ("start", "days", "status", "words"),
    [
        (timedelta(days=-40), 30, Status.FAIL, "expired"),
        (timedelta(days=-25), 30, Status.WARN, "past its renewal time"),
        (timedelta(days=2), 30, Status.FAIL, "not valid until"),
        # The hub's default lifetime is 7 days: a new certificate is fine, not "6 days left".
        (timedelta(minutes=-5), 7, Status.OK, "valid until"),
        (timedelta(days=-4), 7, Status.OK, "valid until"),  # renewal due after 4 d 16 h
        (timedelta(days=-5), 7, Status.WARN, "a third of its 7 days lifetime left"),
    ],
)
def test_expiry_and_not_yet_valid(
    root: Path, host: Host, pki: Pki, start: timedelta, days: int, status: Status, words: str
) -> None:
    _, node = issue(
        "gpu-node-1", pki.ca_key, pki.ca.subject, not_before=datetime.now(UTC) + start, days=days
    )
    pki.write_node_certs(root / CERTS.lstrip("/"), node=node, node_key=pki.node_key)
    check = next(c for c in probe_certs(host, CERTS).checks if c.id == "certs.node")
    assert check.status is status and words in check.observed
    if status is Status.WARN:  # the daemon renews: its unit's journal says why it did not
        assert (
            check.remedy == "journalctl -u worldland-node.service -n 50   # why the renewal failed"
        )


def test_not_joined_is_skipped_and_cli_exit_codes(
    root: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORLDLAND_HOME", HOME)
    res = CliRunner().invoke(app, ["diag", "certs", "--root", str(root), "--json"])
    assert res.exit_code == 0
    assert json.loads(res.stdout)["checks"][0]["status"] == "skip"
    _, foreign = issue("gpu-node-1", pki.node_key, pki.node.subject)
    pki.write_node_certs(root / CERTS.lstrip("/"), node=foreign)
    res = CliRunner().invoke(app, ["diag", "certs", "--root", str(root)])
    assert res.exit_code == 1
    assert "certs.chain" in res.stdout


def test_cli_reads_the_configured_cert_dir(root: Path, pki: Pki) -> None:
    """`certs status` honours cert_dir (flag, env, config.toml); `diag certs` must look there
    too, not in ~/.worldland/certs."""
    config.set_value("cert_dir", "/srv/node-certs")
    pki.write_node_certs(root / "srv" / "node-certs")
    res = CliRunner().invoke(app, ["diag", "certs", "--root", str(root), "--json"])
    assert res.exit_code == 0, res.output
    checks = {c["id"]: c for c in json.loads(res.stdout)["checks"]}
    assert checks["certs.node"]["status"] == "ok", checks["certs.node"]
    assert checks["certs.key-mode"]["observed"].startswith("/srv/node-certs/node.key")
