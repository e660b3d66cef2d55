"""Usage ledger: idempotent by event_id, only from the node itself or its owner, summed."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from tests.hub.conftest import bearer, login, register_node, register_pod
from tests.support.hub import RunningHub


def rfc3339(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# Each event gets an hour of its own: intervals of one pod may not overlap.
HOURS = itertools.count()
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def event(node_id: str, seconds: int = 60, gpus: int = 2, **changes: Any) -> dict[str, Any]:
    """An event of ``node_id``'s pod (the pod id is the node id, see ``place_pod``)."""
    start = START + dt.timedelta(hours=next(HOURS))
    return {
        "event_id": str(uuid.uuid4()),
        "node_id": node_id,
        "pod_id": f"pod-{node_id}",
        "gpu_count": gpus,
        "start": rfc3339(start),
        "end": rfc3339(start + dt.timedelta(seconds=seconds)),
        "price_per_sec_wei": "1000",
        **changes,
    }


def place_pod(client: httpx.Client, hub: RunningHub, token: str) -> str:
    """A two-GPU node of the wallet behind ``token``, with someone's pod placed on it."""
    node_id = register_node(client, token, gpus=2)
    register_pod(client, hub, Account.create().address, node_id=node_id, pod_id=f"pod-{node_id}")
    return node_id


@pytest.fixture
def owned(client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount) -> tuple[str, str]:
    token = login(client, wallet, stub_hub.siwe_domain)
    return token, place_pod(client, stub_hub, token)


def summary(client: httpx.Client, token: str, node_id: str) -> dict[str, Any]:
    response = client.get("/v1/usage", params={"node_id": node_id}, headers=bearer(token))
    assert response.status_code == 200
    return dict(response.json())


def test_resent_events_are_acknowledged_not_counted(
    client: httpx.Client, owned: tuple[str, str]
) -> None:
    token, node_id = owned
    events = [event(node_id, 60), event(node_id, 30, gpus=1)]
    first = client.post("/v1/usage", json=events, headers=bearer(token))
    assert first.json() == {"accepted": 2, "duplicates": 0}
    again = client.post("/v1/usage", json=[*events, event(node_id, 10)], headers=bearer(token))
    assert again.json() == {"accepted": 1, "duplicates": 2}
    # wei = seconds * gpu_count * price_per_sec_wei
    assert summary(client, token, node_id) == {
        "node_id": node_id,
        "seconds": 100,
        "wei": str(60 * 2 * 1000 + 30 * 1 * 1000 + 10 * 2 * 1000),
        "events": 3,
    }


def test_a_bad_event_rejects_the_whole_batch(
    client: httpx.Client, stub_hub: RunningHub, owned: tuple[str, str]
) -> None:
    token, node_id = owned
    foreign = place_pod(client, stub_hub, login(client, Account.create(), stub_hub.siwe_domain))
    batch = [event(node_id), event(foreign)]
    assert client.post("/v1/usage", json=batch, headers=bearer(token)).status_code == 403
    backwards = event(node_id, start="2026-01-02T00:00:00Z")
    response = client.post("/v1/usage", json=[event(node_id), backwards], headers=bearer(token))
    assert response.status_code == 422
    assert "end is before start" in response.json()["detail"]
    assert summary(client, token, node_id)["events"] == 0


def test_same_event_id_with_other_values_is_409(
    client: httpx.Client, owned: tuple[str, str]
) -> None:
    token, node_id = owned
    original = event(node_id)
    assert client.post("/v1/usage", json=[original], headers=bearer(token)).status_code == 200
    changed = dict(original, gpu_count=8)
    assert client.post("/v1/usage", json=[changed], headers=bearer(token)).status_code == 409
    assert summary(client, token, node_id)["events"] == 1


def test_event_ids_of_one_node_do_not_collide_with_anothers(
    client: httpx.Client, stub_hub: RunningHub, owned: tuple[str, str]
) -> None:
    # Event ids are the node's own idempotency keys. When they were unique hub-wide, another
    # wallet's node could post an id first and get this node's event refused with a 409.
    token, node_id = owned
    stranger = login(client, Account.create(), stub_hub.siwe_domain)
    theirs = place_pod(client, stub_hub, stranger)
    early = [event(theirs, event_id="ev-1")]
    first = client.post("/v1/usage", json=early, headers=bearer(stranger))
    assert first.json() == {"accepted": 1, "duplicates": 0}
    mine = client.post("/v1/usage", json=[event(node_id, event_id="ev-1")], headers=bearer(token))
    assert mine.status_code == 200
    assert mine.json() == {"accepted": 1, "duplicates": 0}
    assert summary(client, token, node_id)["events"] == 1
    assert summary(client, stranger, theirs)["events"] == 1


def test_strangers_can_neither_post_nor_read(
    client: httpx.Client, stub_hub: RunningHub, owned: tuple[str, str]
) -> None:
    _, node_id = owned
    stranger = login(client, Account.create(), stub_hub.siwe_domain)
    assert (
        client.post("/v1/usage", json=[event(node_id)], headers=bearer(stranger)).status_code == 403
    )
    assert client.post("/v1/usage", json=[event(node_id)]).status_code == 401
    read = client.get("/v1/usage", params={"node_id": node_id}, headers=bearer(stranger))
    assert read.status_code == 403


@pytest.mark.parametrize(
    "changes",
    [
        {"start": "2026-01-01T00:00:00"},
        {"gpu_count": 0},
        {"price_per_sec_wei": "1e3"},
        {"node_id": "not-a-uuid"},
        # Valid RFC 3339 whose UTC form falls outside datetime's years 1-9999 (was a 500).
        {"start": "0001-01-01T00:00:00+01:00", "end": "0001-01-01T00:00:00+01:00"},
        {"start": "9999-12-31T23:59:59-01:00", "end": "9999-12-31T23:59:59-01:00"},
    ],
)
def test_events_are_validated(
    client: httpx.Client, owned: tuple[str, str], changes: dict[str, Any]
) -> None:
    token, node_id = owned
    response = client.post("/v1/usage", json=[{**event(node_id), **changes}], headers=bearer(token))
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str)


def test_an_interval_that_has_not_ended_yet_is_refused(
    client: httpx.Client, owned: tuple[str, str]
) -> None:
    # A node could otherwise bill, today, for GPU time up to a year ahead.
    token, node_id = owned
    now = dt.datetime.now(dt.UTC)
    ahead = event(
        node_id, start=rfc3339(now + dt.timedelta(days=1)), end=rfc3339(now + dt.timedelta(days=2))
    )
    response = client.post("/v1/usage", json=[event(node_id), ahead], headers=bearer(token))
    assert response.status_code == 422
    assert f"event {ahead['event_id']} ends in the future" in response.json()["detail"]
    assert summary(client, token, node_id)["events"] == 0
    just_ended = event(node_id, start=rfc3339(now - dt.timedelta(minutes=1)), end=rfc3339(now))
    assert client.post("/v1/usage", json=[just_ended], headers=bearer(token)).status_code == 200


def test_empty_batch_is_422(client: httpx.Client, owned: tuple[str, str]) -> None:
    token, _ = owned
    assert client.post("/v1/usage", json=[], headers=bearer(token)).status_code == 422
