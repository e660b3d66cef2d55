"""Free text the hub stores and serves back carries no control, bidi or format characters.

A GPU name with ``U+202E`` (right-to-left override) or an escape sequence is shown to the
provider, the operator and any renter UI as something it is not; the hub refused only C0
controls in some fields and nothing at all in transfer paths and names.
"""

from __future__ import annotations

import json
import sqlite3
import uuid

import httpx
import pytest
from eth_account.signers.local import LocalAccount

from tests.hub.conftest import bearer, login, path_of, register_pod
from tests.support.hub import RunningHub

# (character, what the message must call it)
REFUSED = [
    ("\x00", "U+0000"),
    ("\t", "U+0009"),
    ("\n", "U+000A"),
    ("\x1b", "U+001B"),
    ("\x7f", "U+007F"),
    ("\x85", "U+0085"),
    ("\x9b", "U+009B"),
    ("\u202e", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("\u202a", "U+202A"),
    ("\u2066", "U+2066"),
    ("\u2069", "U+2069"),
    ("\u200e", "U+200E"),
    ("\u200f", "U+200F"),
    ("\u061c", "U+061C"),
    ("\u200b", "U+200B ZERO WIDTH SPACE"),
    ("\ufeff", "U+FEFF"),
    ("\u2028", "U+2028 LINE SEPARATOR"),
]


def node_body(name: str = "Tesla T4", label: str = "us-east") -> dict[str, object]:
    return {
        "host": f"gpu-{uuid.uuid4().hex[:8]}",
        "gpus": [{"name": name, "memory_mib": 15360, "uuid": f"GPU-{uuid.uuid4()}"}],
        "price_per_sec_wei": "1000",
        "labels": {"zone": label},
    }


def transfer_body(pod_id: str, path: str = "/w/data.bin", name: str = "data.bin") -> object:
    return {"pod_id": pod_id, "path": path, "name": name, "size": 1, "sha256": "a" * 64}


def post(client: httpx.Client, url: str, body: object, token: str) -> httpx.Response:
    """POST ``body`` as ASCII JSON, every character as the hub sees it (no client encoding)."""
    headers = {**bearer(token), "content-type": "application/json"}
    return client.post(url, content=json.dumps(body), headers=headers)


@pytest.fixture
def token(client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount) -> str:
    return login(client, wallet, stub_hub.siwe_domain)


@pytest.mark.parametrize(("char", "named"), REFUSED)
def test_gpu_names_and_labels_refuse_invisible_characters(
    client: httpx.Client, token: str, char: str, named: str
) -> None:
    for body, field in (
        (node_body(name=f"Tesla{char}T4"), "gpus.0.name"),
        (node_body(label=f"us{char}east"), "labels.zone"),
    ):
        response = post(client, "/v1/nodes", body, token)
        assert response.status_code == 422, (field, response.text)
        detail = response.json()["detail"]
        assert detail.startswith(f"{field}: ") and named in detail, detail
    assert client.get("/v1/nodes", headers=bearer(token)).json() == {"nodes": []}


@pytest.mark.parametrize(("char", "named"), REFUSED)
def test_transfer_paths_and_names_refuse_invisible_characters(
    client: httpx.Client,
    stub_hub: RunningHub,
    wallet: LocalAccount,
    token: str,
    char: str,
    named: str,
) -> None:
    pod_id = register_pod(client, stub_hub, wallet.address)
    for body, field in (
        (transfer_body(pod_id, path=f"/w/gpt{char}txt.exe"), "path"),
        (transfer_body(pod_id, name=f"gpt{char}txt.exe"), "name"),
    ):
        response = post(client, "/v1/transfers", body, token)
        assert response.status_code == 422, (field, response.text)
        detail = response.json()["detail"]
        assert detail.startswith(f"{field}: ") and named in detail, detail


def test_ordinary_unicode_text_is_kept(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount, token: str
) -> None:
    name, label = "NVIDIA GeForce RTX 4090 \u2013 24 GB", "東京 ü é"
    created = client.post("/v1/nodes", json=node_body(name, label), headers=bearer(token))
    assert created.status_code == 201, created.text
    [node] = client.get("/v1/nodes", headers=bearer(token)).json()["nodes"]
    assert (node["gpus"][0]["name"], node["labels"]["zone"]) == (name, label)
    pod_id = register_pod(client, stub_hub, wallet.address)
    body = transfer_body(pod_id, path="/w/données/模型.pt", name="模型.pt")
    assert client.post("/v1/transfers", json=body, headers=bearer(token)).status_code == 201


def test_a_name_stored_before_the_check_still_lists(
    client: httpx.Client, stub_hub: RunningHub, token: str
) -> None:
    # Rows written by an older hub are not rewritten; listing them must not become a 500.
    created = post(client, "/v1/nodes", node_body(), token)
    with sqlite3.connect(path_of(stub_hub)) as db:
        db.execute(
            "UPDATE nodes SET gpus = ? WHERE node_id = ?",
            (
                json.dumps([{"name": "T4\u202e", "memory_mib": 1, "uuid": "GPU-old"}]),
                created.json()["node_id"],
            ),
        )
    listed = client.get("/v1/nodes", headers=bearer(token))
    assert listed.status_code == 200
    assert listed.json()["nodes"][0]["gpus"][0]["name"] == "T4\u202e"
