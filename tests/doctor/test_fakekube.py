"""The fake API server speaks the real API: the real kubernetes client reads and writes it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fakekube import Cluster, FakeKube, start_fake_kube


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[tuple[FakeKube, Any]]:
    from kubernetes import client, config

    cluster = Cluster()
    with start_fake_kube(cluster) as fake:
        path = fake.write_kubeconfig(tmp_path / "admin.conf")
        api_client = config.new_client_from_config(config_file=str(path))
        yield fake, client.CoreV1Api(api_client)


def test_nodes_and_version(kube: tuple[FakeKube, Any]) -> None:
    from kubernetes import client

    fake, api = kube
    fake.cluster.add_node("gpu-a", {"nvidia.com/gpu": "1"}, {"Ready": "True"})
    fake.cluster.add_node("gpu-b", {}, {"Ready": "False"})
    nodes = api.list_node()
    assert [n.metadata.name for n in nodes.items] == ["gpu-a", "gpu-b"]
    node = api.read_node("gpu-a")
    assert node.status.allocatable["nvidia.com/gpu"] == "1"
    assert node.status.conditions[0].type == "Ready"
    version = client.VersionApi(api.api_client).get_code()
    assert version.git_version == "v1.29.3"


def test_missing_objects_are_status_404(kube: tuple[FakeKube, Any]) -> None:
    from kubernetes.client.exceptions import ApiException

    _, api = kube
    with pytest.raises(ApiException) as err:
        api.read_node("nope")
    assert err.value.status == 404
    assert '"reason": "NotFound"' in (err.value.body or "")


def test_bootstrap_token_secret_round_trip(kube: tuple[FakeKube, Any]) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    fake, api = kube
    b64 = {k: base64.b64encode(v.encode()).decode() for k, v in {"token-id": "abcdef"}.items()}
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name="bootstrap-token-abcdef"),
        type="bootstrap.kubernetes.io/token",
        data=b64,
    )
    created = api.create_namespaced_secret("kube-system", body)
    assert created.metadata.namespace == "kube-system"
    read = api.read_namespaced_secret("bootstrap-token-abcdef", "kube-system")
    assert read.type == "bootstrap.kubernetes.io/token"
    assert len(api.list_namespaced_secret("kube-system").items) == 1
    with pytest.raises(ApiException) as err:
        api.create_namespaced_secret("kube-system", body)
    assert err.value.status == 409
    fake.cluster.add_configmap("cluster-info", "kube-public", {"kubeconfig": "apiVersion: v1"})
    cm = api.read_namespaced_config_map("cluster-info", "kube-public")
    assert cm.data["kubeconfig"] == "apiVersion: v1"


def test_pods_selector_log_and_delete(kube: tuple[FakeKube, Any]) -> None:
    fake, api = kube
    fake.cluster.add_pod("plugin-1", "kube-system", {"name": "nvidia-device-plugin-ds"}, log="ok\n")
    fake.cluster.add_pod("other", "kube-system", {"name": "kube-proxy"})
    pods = api.list_namespaced_pod("kube-system", label_selector="name=nvidia-device-plugin-ds")
    assert [p.metadata.name for p in pods.items] == ["plugin-1"]
    assert api.read_namespaced_pod_log("plugin-1", "kube-system") == "ok\n"
    api.delete_namespaced_pod("plugin-1", "kube-system")
    assert fake.cluster.deleted_pods == [("kube-system", "plugin-1")]
    assert [p.metadata.name for p in api.list_namespaced_pod("kube-system").items] == ["other"]
