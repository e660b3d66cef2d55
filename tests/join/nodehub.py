"""What the node steps' tests share: real hubs with stub join flags, a wallet, the steps.

The hub is the real one (``python -m hub_stub``, over HTTP and over TLS), started with the
stub kubeadm join flags that name the fake cluster of :mod:`tests.support.fakes_node`; the
wallet's key file lives on the fake root, where a provider keeps it, and logins are real
SIWE. tests/join/conftest.py makes the fixtures available to every test there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from eth_account import Account

from tests.support import fakes_node
from tests.support.hub import REPO, RunningHub, start_hub
from worldland_cli import config
from worldland_cli.hubclient import HubClient, HubEndpoint
from worldland_cli.requirements import daemon, hub, kubeadm, vpn
from worldland_cli.requirements.base import JoinSettings, Requirement

if TYPE_CHECKING:
    from tests.join.conftest import FakeHost

API_SERVER = "10.100.0.1:6443"
TOKEN = "abcdef.0123456789abcdef"
KEY_FILE = "/root/.worldland-wallet.key"
HOSTNAME = "gpu-node-1"
# The console script of this checkout's venv: what `worldland join` puts in the daemon unit.
WORLDLAND = str(Path(sys.executable).with_name("worldland"))
# Nothing listens on port 1: the node daemon's API is not there.
NO_DAEMON = "https://127.0.0.1:1/health"


@dataclass(frozen=True)
class Cluster:
    """The fake cluster the hub's join parameters name: its description and CA pin."""

    description: Path
    pin: str


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    directory = tmp_path_factory.mktemp("cluster")
    pin = fakes_node.make_cluster(directory, API_SERVER, TOKEN)
    return Cluster(directory / fakes_node.CLUSTER_FILE, pin)


def hub_with_cluster(
    directory: Path, cluster: Cluster, *, tls: bool, extra: tuple[str, ...] = ()
) -> RunningHub:
    """A real hub whose stub join parameters name ``cluster``."""
    flags = ("--kube-api-server", API_SERVER, "--kube-token", TOKEN, "--kube-ca-hash", cluster.pin)
    return start_hub(directory, tls=tls, extra_args=(*flags, *extra))


@pytest.fixture(scope="module")
def http_hub(tmp_path_factory: pytest.TempPathFactory, cluster: Cluster) -> Iterator[RunningHub]:
    running = hub_with_cluster(tmp_path_factory.mktemp("hub"), cluster, tls=False)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def tls_hub(tmp_path_factory: pytest.TempPathFactory, cluster: Cluster) -> Iterator[RunningHub]:
    running = hub_with_cluster(tmp_path_factory.mktemp("tlshub"), cluster, tls=True)
    yield running
    running.stop()


@pytest.fixture(params=["http", "https"])
def node_hub(request: pytest.FixtureRequest) -> RunningHub:
    """The same test against the plain hub and the TLS hub."""
    name = "http_hub" if request.param == "http" else "tls_hub"
    running: RunningHub = request.getfixturevalue(name)
    return running


def prepare_root(fake: FakeHost, cluster: Cluster, *, kubeadm: bool = True) -> str:
    """A provider host before join's node steps: kubeadm installed from pkgs.k8s.io (unless
    ``kubeadm`` is false: join's own kube.binaries step installs it), a wallet key file on
    it, the fake cluster reachable. Returns the wallet's address."""
    from tests.join.conftest import install_kube_packages  # conftest imports this module

    (fake.root / "etc/hostname").write_text(f"{HOSTNAME}\n")
    if kubeadm:
        install_kube_packages(fake, "kubeadm")
    account = Account.create()
    key_file = fake.root / KEY_FILE.lstrip("/")
    key_file.parent.mkdir(mode=0o700, exist_ok=True)
    key_file.write_text(bytes(account.key).hex() + "\n")
    key_file.chmod(0o600)
    shutil.copy(cluster.description, fake.fakes / fakes_node.CLUSTER_FILE)
    return str(account.address)


def settings_for(running: RunningHub) -> JoinSettings:
    return JoinSettings(
        hub=running.url,
        hub_ca=str(running.ca_cert) if running.tls else None,
        private_key_file=KEY_FILE,
        worldland=WORLDLAND,
    )


def node_steps(*, joining: bool = True) -> list[Requirement]:
    """Join's node steps, in all_requirements' order (the daemon's API is absent)."""
    cert_dir = str(config.default_cert_dir())
    return [
        hub.Registered(cert_dir, joining=joining),
        vpn.WireGuard(joining=joining),
        kubeadm.Joined(joining=joining),
        daemon.DaemonHealth(url=NO_DAEMON, cert_dir=cert_dir, joining=joining),
    ]


def owner_client(running: RunningHub, fake: FakeHost) -> HubClient:
    """The provider's own client (a fresh login with the wallet on the fake root)."""
    from worldland_cli.auth.siwe import login
    from worldland_cli.auth.wallet import load_wallet

    endpoint = HubEndpoint(running.url, str(running.ca_cert) if running.tls else None)
    with endpoint.client() as anonymous:
        session = login(anonymous, load_wallet(KEY_FILE, fake.host), host=None)
    return endpoint.client(token=session.token)


def server_config(running: RunningHub) -> str:
    """The VPN server's wg-quick config as the hub renders it from its address book."""
    done = subprocess.run(
        [sys.executable, "-m", "hub_stub", "vpn", "server-config", "--data-dir",
         str(running.data_dir), "--listen-port", "51820"],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout
