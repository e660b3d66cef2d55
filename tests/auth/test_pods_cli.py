"""`worldland pods`: the renter's pods from the real hub, as text and as one JSON document."""

from __future__ import annotations

import json

from tests.auth.conftest import cli, hub_args
from tests.support.hub import RunningHub

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def test_pods_lists_the_renters_pods_and_says_so_when_there_are_none(
    plain_hub: RunningHub,
) -> None:
    created = json.loads(cli("wallet", "new", "--json").stdout)
    assert cli("login", *hub_args(plain_hub)).exit_code == 0
    empty = cli("pods", *hub_args(plain_hub))
    assert empty.exit_code == 0, empty.output
    assert empty.stdout.strip() == f"No pods for {created['address']} at {plain_hub.url}."
    with plain_hub.client() as admin:
        body = {
            "pod_id": "pod-7f3a",
            "renter_address": created["address"],
            "ssh_host": "10.100.1.7",
            "ssh_port": 30022,
            "ssh_user": "root",
            "host_key": HOST_KEY,
        }
        headers = {"Authorization": f"Bearer {plain_hub.admin_token}"}
        assert admin.post("/v1/admin/pods", json=body, headers=headers).status_code == 201
    shown = cli("pods", *hub_args(plain_hub))
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines() == [
        "POD       NODE  GPU  STATE     SSH",
        "pod-7f3a  -     -    unplaced  root@10.100.1.7:30022",
    ]
    document = json.loads(cli("pods", *hub_args(plain_hub), "--json").stdout)
    assert document["ok"] and document["address"] == created["address"]
    assert document["pods"] == [
        {
            "pod_id": "pod-7f3a",
            "node_id": None,
            "gpu_model": None,
            "gpu_count": 0,
            "state": "unplaced",
            "last_billed_at": None,
            "ssh": {"host": "10.100.1.7", "port": 30022, "user": "root"},
        }
    ]


def test_pods_without_a_login_is_denied_with_the_login_to_run(plain_hub: RunningHub) -> None:
    denied = cli("pods", *hub_args(plain_hub), "--json")
    assert denied.exit_code == 4
    assert json.loads(denied.stdout)["ok"] is False
