"""Daemon tests: the real hub over TLS, the fake Kubernetes API, the daemon as a real process.

The TLS hub is shared by a module (each test registers its own wallet and node); the fake API
server is per test, with bookmarks every 0.2 s. Daemons run with 1 s heartbeats and 2 s
slices, so a pod's life of a few seconds crosses several slices.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import (
    DaemonProcess,
    ProviderNode,
    provision,
    start_daemon,
    wait_for,
)
from tests.support.fakekube import FakeKube, running_status, start_fake_kube, terminated_status
from tests.support.hub import RunningHub, start_hub

NODE_NAME = "gpu-node-1"


def iso(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def tls_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    running_hub = start_hub(tmp_path_factory.mktemp("tlshub"), tls=True)
    yield running_hub
    running_hub.stop()


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[FakeKube]:
    with start_fake_kube() as fake:
        fake.cluster.bookmark_interval = 0.2
        yield fake


@dataclass
class Rig:
    """A provider node, its cluster, and a way to start its daemon."""

    node: ProviderNode
    kube: FakeKube
    kubeconfig: Path
    log: Path
    # Pod ids are the hub's, across nodes: each rig's pod has its own.
    pod: str = field(default_factory=lambda: f"train-{uuid.uuid4().hex[:8]}")

    def start(self, **kwargs: Any) -> DaemonProcess:
        return start_daemon(self.node, self.kubeconfig, NODE_NAME, log=self.log, **kwargs)

    def run_pod(self, started: int, *, place: bool = True) -> None:
        """The rig's one-GPU pod, running since ``started``, placed at the hub first unless
        it already is."""
        if place:
            self.node.place_pod(self.pod)
        self.kube.cluster.add_pod(
            self.pod, node_name=NODE_NAME, gpus=1, status=running_status(iso(started))
        )

    def end_pod(self, started: int, finished: int) -> None:
        self.kube.cluster.set_pod_status(
            "default", self.pod, terminated_status(iso(started), iso(finished))
        )

    def billed(self, seconds: int) -> bool:
        return int(self.node.ledger()["seconds"]) == seconds


def rig_for(hub: RunningHub, kube: FakeKube, tmp_path: Path) -> Rig:
    node = provision(hub, tmp_path / "provider")
    return Rig(node, kube, kube.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path / "daemon.log")


@pytest.fixture
def rig(tls_hub: RunningHub, kube: FakeKube, tmp_path: Path) -> Rig:
    return rig_for(tls_hub, kube, tmp_path)


def settled(rig: Rig, daemon: DaemonProcess, seconds: int, timeout: float = 20.0) -> None:
    """Wait until the hub has exactly ``seconds`` and the daemon's outbox is empty."""
    wait_for(lambda: rig.billed(seconds), timeout)
    wait_for(lambda: daemon.usage()["outbox_depth"] == 0, timeout)
