"""Pods (operator-registered, visible to their renter only) and one-time transfer codes."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import sqlite3
import uuid

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from hub_stub.words import WORDS
from tests.hub.conftest import HOST_KEY, bearer, login, path_of, register_node, register_pod
from tests.support.hub import RunningHub

SHA = "a" * 64


def add_pod(client: httpx.Client, hub: RunningHub, renter: str, **changes: object) -> str:
    pod_id = f"pod-{uuid.uuid4().hex[:8]}"
    body = {
        "pod_id": pod_id,
        "renter_address": renter.lower(),
        "ssh_host": "127.0.0.1",
        "ssh_port": 2222,
        "ssh_user": "root",
        "host_key": HOST_KEY,
        **changes,
    }
    response = client.post("/v1/admin/pods", json=body, headers=bearer(hub.admin_token))
    assert response.status_code == 201, response.text
    return pod_id


@pytest.fixture
def renter(client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount) -> tuple[str, str]:
    """(token, pod id) of a renter with one pod."""
    token = login(client, wallet, stub_hub.siwe_domain)
    return token, add_pod(client, stub_hub, wallet.address)


def test_pod_registration_needs_the_admin_token(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    token = login(client, wallet, stub_hub.siwe_domain)
    body = {
        "pod_id": "p1",
        "renter_address": wallet.address,
        "ssh_host": "h",
        "ssh_port": 22,
        "ssh_user": "root",
        "host_key": HOST_KEY,
    }
    assert client.post("/v1/admin/pods", json=body, headers=bearer(token)).status_code == 401
    assert client.post("/v1/admin/pods", json=body).status_code == 401


def test_only_the_renter_sees_the_ssh_endpoint(
    client: httpx.Client, stub_hub: RunningHub, renter: tuple[str, str]
) -> None:
    token, pod_id = renter
    response = client.get(f"/v1/pods/{pod_id}/ssh", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {
        "pod_id": pod_id,
        "host": "127.0.0.1",
        "port": 2222,
        "user": "root",
        "host_key": HOST_KEY,
    }
    stranger = login(client, Account.create(), stub_hub.siwe_domain)
    assert client.get(f"/v1/pods/{pod_id}/ssh", headers=bearer(stranger)).status_code == 404
    assert client.get(f"/v1/pods/{pod_id}/ssh").status_code == 401


def test_reposting_a_pod_updates_it(
    client: httpx.Client, stub_hub: RunningHub, renter: tuple[str, str], wallet: LocalAccount
) -> None:
    token, pod_id = renter
    body = {
        "pod_id": pod_id,
        "renter_address": wallet.address,
        "ssh_host": "10.100.1.9",
        "ssh_port": 22,
        "ssh_user": "worker",
        "host_key": HOST_KEY,
    }
    response = client.post("/v1/admin/pods", json=body, headers=bearer(stub_hub.admin_token))
    assert response.status_code == 200
    ssh = client.get(f"/v1/pods/{pod_id}/ssh", headers=bearer(token)).json()
    assert (ssh["host"], ssh["port"], ssh["user"]) == ("10.100.1.9", 22, "worker")


def create(client: httpx.Client, token: str, pod_id: str, **extra: object) -> httpx.Response:
    body = {"pod_id": pod_id, "path": "/workspace/data.bin", "name": "data.bin", "size": 5,
            "sha256": SHA, **extra}  # fmt: skip
    return client.post("/v1/transfers", json=body, headers=bearer(token))


def test_transfer_code_is_runpodctl_style_and_answers_once(
    client: httpx.Client, stub_hub: RunningHub, renter: tuple[str, str]
) -> None:
    token, pod_id = renter
    created = create(client, token, pod_id)
    assert created.status_code == 201
    code = created.json()["code"]
    match = re.fullmatch(r"(\d{4})" + r"-([a-z]+)" * 5, code)
    assert match is not None
    assert all(word in WORDS for word in match.groups()[1:])
    receiver = login(client, Account.create(), stub_hub.siwe_domain)
    first = client.get(f"/v1/transfers/{code}", headers=bearer(receiver))
    assert first.status_code == 200
    body = first.json()
    assert (body["pod_id"], body["path"], body["size"], body["sha256"]) == (
        pod_id, "/workspace/data.bin", 5, SHA,
    )  # fmt: skip
    assert body["ssh"]["host_key"] == HOST_KEY
    second = client.get(f"/v1/transfers/{code}", headers=bearer(receiver))
    assert second.status_code == 410
    assert second.json() == {"detail": "code already used"}


def test_codes_need_a_login_and_unknown_codes_are_404(
    client: httpx.Client, renter: tuple[str, str]
) -> None:
    token, pod_id = renter
    code = create(client, token, pod_id).json()["code"]
    assert client.get(f"/v1/transfers/{code}").status_code == 401
    assert client.get("/v1/transfers/0000-no-such-code", headers=bearer(token)).status_code == 404
    # The failed anonymous attempt did not spend the code.
    assert client.get(f"/v1/transfers/{code}", headers=bearer(token)).status_code == 200


def test_expired_code_is_410(
    client: httpx.Client, stub_hub: RunningHub, renter: tuple[str, str]
) -> None:
    token, pod_id = renter
    code = create(client, token, pod_id).json()["code"]
    with sqlite3.connect(path_of(stub_hub)) as db:
        db.execute(
            "UPDATE transfers SET expires_at = 0 WHERE code_hash = ?",
            (hashlib.sha256(code.encode()).hexdigest(),),
        )
    response = client.get(f"/v1/transfers/{code}", headers=bearer(token))
    assert response.status_code == 410
    assert "expired" in response.json()["detail"]


def test_only_the_pods_renter_can_create_codes(
    client: httpx.Client, stub_hub: RunningHub, renter: tuple[str, str]
) -> None:
    _, pod_id = renter
    stranger = login(client, Account.create(), stub_hub.siwe_domain)
    assert create(client, stranger, pod_id).status_code == 404


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "../etc/passwd"},
        {"name": ".."},
        {"sha256": "XYZ"},
        {"size": -1},
        {"path": "relative/path"},
        {"code": "UPPER-case"},
    ],
)
def test_transfer_bodies_are_validated(
    client: httpx.Client, renter: tuple[str, str], changes: dict[str, object]
) -> None:
    token, pod_id = renter
    response = create(client, token, pod_id, **changes)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str)


def test_a_renter_lists_their_pods_with_node_gpus_state_and_ssh(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    """GET /v1/pods: the renter's pods (runpodctl get pod), so pod ids need not come from
    elsewhere; the state is what the hub knows from each pod's node."""
    renter = login(client, wallet, stub_hub.siwe_domain)
    provider = login(client, Account.create(), stub_hub.siwe_domain)
    busy = register_node(client, provider, gpus=2)
    quiet = register_node(client, provider, gpus=1)
    running = register_pod(client, stub_hub, wallet.address, node_id=busy, pod_id="a-running")
    register_pod(client, stub_hub, wallet.address, node_id=quiet, pod_id="b-offline")
    register_pod(client, stub_hub, wallet.address, pod_id="c-unplaced")
    register_pod(client, stub_hub, Account.create().address, node_id=busy, pod_id="d-theirs")
    beat = client.post(f"/v1/nodes/{busy}/heartbeat", headers=bearer(provider))
    assert beat.status_code == 200, beat.text
    end = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=5)
    event = {
        "event_id": str(uuid.uuid4()),
        "node_id": busy,
        "pod_id": running,
        "gpu_count": 2,
        "start": (end - dt.timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "price_per_sec_wei": "1000",
    }
    assert client.post("/v1/usage", json=[event], headers=bearer(provider)).status_code == 200

    listed = client.get("/v1/pods", headers=bearer(renter))
    assert listed.status_code == 200, listed.text
    pods = {p["pod_id"]: p for p in listed.json()["pods"]}
    assert list(pods) == ["a-running", "b-offline", "c-unplaced"]
    assert pods["a-running"] == {
        "pod_id": "a-running",
        "node_id": busy,
        "gpu_model": "Tesla T4",
        "gpu_count": 2,
        "state": "running",
        "last_billed_at": event["end"],
        "ssh_host": "127.0.0.1",
        "ssh_port": 2222,
        "ssh_user": "root",
    }
    assert (pods["b-offline"]["state"], pods["b-offline"]["gpu_count"]) == ("node-offline", 1)
    assert pods["c-unplaced"] == {
        "pod_id": "c-unplaced",
        "node_id": None,
        "gpu_model": None,
        "gpu_count": 0,
        "state": "unplaced",
        "last_billed_at": None,
        "ssh_host": "127.0.0.1",
        "ssh_port": 2222,
        "ssh_user": "root",
    }
    stranger = login(client, Account.create(), stub_hub.siwe_domain)
    assert client.get("/v1/pods", headers=bearer(stranger)).json() == {"pods": []}
    assert client.get("/v1/pods").status_code == 401
