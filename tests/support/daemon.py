"""A registered provider node and the real node daemon as a process, for tests, bench and demo.

:func:`provision` does what a provider does, through the CLI itself (in this process, so it
costs a fraction of a second): ``worldland wallet new`` and ``worldland register`` against a
real hub, leaving node.json, the node certificate and the owner's session in a
WORLDLAND_HOME. :func:`start_daemon` then runs ``python -m worldland_cli.main daemon`` on
that home, bound to free loopback ports, and reads the ports back from its
``daemon.started`` log line; the process can be stopped with SIGTERM or killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.hub import REPO, RunningHub

START_TIMEOUT = 30.0


@dataclass
class ProviderNode:
    """A node registered at ``hub`` by a fresh wallet, with its files in ``home``."""

    hub: RunningHub
    home: Path
    node_id: str
    owner_token: str
    owner_address: str
    price_per_sec_wei: int

    @property
    def certs(self) -> Path:
        return self.home / "certs"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            WORLDLAND_HOME=str(self.home),
            WORLDLAND_HUB=self.hub.url,
            WORLDLAND_HUB_CA=str(self.hub.ca_cert),
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        )
        return env

    def owner(self) -> httpx.Client:
        return self.hub.client(headers={"Authorization": f"Bearer {self.owner_token}"})

    def ledger(self) -> dict[str, Any]:
        """The hub's usage totals for this node: seconds, wei, events."""
        with self.owner() as client:
            response = client.get("/v1/usage", params={"node_id": self.node_id})
        response.raise_for_status()
        return dict(response.json())

    def place_pod(self, pod_id: str) -> None:
        """The operator places ``pod_id`` on this node, so that the node may bill it."""
        body = {
            "pod_id": pod_id,
            "renter_address": self.owner_address,
            "node_id": self.node_id,
            "ssh_host": "127.0.0.1",
            "ssh_port": 2222,
            "ssh_user": "root",
            "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ0ZXN0a2V5Zm9ydGVzdHM",
        }
        headers = {"Authorization": f"Bearer {self.hub.admin_token}"}
        with self.hub.client(headers=headers) as client:
            client.post("/v1/admin/pods", json=body).raise_for_status()


@contextlib.contextmanager
def _home(home: Path, hub: RunningHub | None = None) -> Iterator[None]:
    """WORLDLAND_HOME (and the hub) set for code run in this process, then put back."""
    names = {"WORLDLAND_HOME": str(home)}
    if hub is not None:
        names |= {"WORLDLAND_HUB": hub.url, "WORLDLAND_HUB_CA": str(hub.ca_cert)}
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def cli(args: Sequence[str], home: Path, hub: RunningHub) -> dict[str, Any]:
    """Run one `worldland ... --json` command in this process as the provider of ``home``;
    its JSON document (a failure raises, with the document)."""
    from worldland_cli.main import app

    out = io.StringIO()
    with _home(home, hub), contextlib.redirect_stdout(out):
        code = app([*args, "--json"], prog_name="worldland", standalone_mode=False)
    doc = json.loads(out.getvalue())
    if code != 0:
        raise RuntimeError(f"worldland {' '.join(args)} exited {code}: {doc}")
    return dict(doc)


def provision(hub: RunningHub, home: Path, price_per_sec_wei: int = 1000) -> ProviderNode:
    """A wallet, a login and a registered node (one GPU, given by hand) with its certificate."""
    from worldland_cli.auth.session import load_session

    home.mkdir(parents=True, exist_ok=True)
    address = str(cli(["wallet", "new"], home, hub)["address"])
    registered = cli(
        [
            "register",
            "--host", f"gpu-{uuid.uuid4().hex[:10]}",
            "--gpu-type", "Tesla T4", "--memory-gb", "16",
            "--price-per-sec", str(price_per_sec_wei),
        ],
        home,
        hub,
    )  # fmt: skip
    with _home(home, hub):
        session = load_session(hub.url)
    assert session is not None
    return ProviderNode(
        hub=hub,
        home=home,
        node_id=str(registered["node_id"]),
        owner_token=session.token,
        owner_address=address,
        price_per_sec_wei=price_per_sec_wei,
    )


@dataclass
class DaemonProcess:
    """A running `worldland daemon` and where it listens."""

    process: subprocess.Popen[bytes]
    log: Path
    api_port: int
    metrics_port: int
    node: ProviderNode
    started: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The daemon's log lines so far (those named ``name``)."""
        lines = []
        for text in self.log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                line = json.loads(text)
                if name is None or line.get("event") == name:
                    lines.append(line)
        return lines

    def client(self, cert: tuple[str, str] | None = None) -> httpx.Client:
        """A client of the node API: the server checked against the hub CA, the host name
        not (the certificate names the node id); ``cert`` is the client's (cert, key)."""
        context = ssl.create_default_context(cafile=str(self.node.certs / "ca.crt"))
        context.check_hostname = False
        if cert is not None:
            context.load_cert_chain(*cert)
        return httpx.Client(base_url=self.url, verify=context, timeout=10.0)

    def node_client(self) -> httpx.Client:
        """A client presenting the node's own certificate (issued by the hub CA)."""
        return self.client((str(self.node.certs / "node.crt"), str(self.node.certs / "node.key")))

    def health(self) -> dict[str, Any]:
        with self.client() as client:
            response = client.get("/health")
        response.raise_for_status()
        return dict(response.json())

    def usage(self) -> dict[str, Any]:
        with self.node_client() as client:
            response = client.get("/v1/usage")
        response.raise_for_status()
        return dict(response.json())

    def metrics(self) -> str:
        response = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10.0)
        response.raise_for_status()
        return response.text

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, as systemd stops it; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no chance to flush or say goodbye."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


def start_daemon(
    node: ProviderNode,
    kubeconfig: Path,
    node_name: str,
    *,
    log: Path,
    heartbeat: float = 1.0,
    slice_seconds: int = 2,
    extra: Sequence[str] = (),
) -> DaemonProcess:
    """Start the daemon for ``node`` and return once it listens (its log goes to ``log``)."""
    args = [
        sys.executable, "-m", "worldland_cli.main", "daemon",
        "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
        "--kubeconfig", str(kubeconfig), "--node-name", node_name,
        "--heartbeat", str(heartbeat), "--slice", str(slice_seconds),
        *extra,
    ]  # fmt: skip
    offset = log.stat().st_size if log.exists() else 0
    with open(log, "ab") as out:
        process = subprocess.Popen(
            args, cwd=REPO, env=node.env(), stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        with open(log, "rb") as f:
            f.seek(offset)
            for text in f.read().decode(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    line = json.loads(text)
                    if line.get("event") == "daemon.started":
                        api = int(str(line["listen"]).rsplit(":", 1)[1])
                        metrics = int(str(line["metrics"]).rsplit(":", 1)[1])
                        return DaemonProcess(process, log, api, metrics, node, line)
        if process.poll() is not None:
            raise RuntimeError(f"daemon exited {process.returncode}: {log.read_text()[-3000:]}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"daemon did not start within {START_TIMEOUT} s: {log.read_text()[-3000:]}")


def wait_for(what: Callable[[], bool], timeout: float = 20.0, every: float = 0.1) -> None:
    """Until ``what()`` holds, or fail naming the condition after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {getattr(what, '__name__', what)}")
        time.sleep(every)


@contextlib.contextmanager
def running(daemon: DaemonProcess) -> Iterator[DaemonProcess]:
    """Stop the daemon (SIGTERM, then SIGKILL) when the block ends, however it ends."""
    try:
        yield daemon
    finally:
        try:
            daemon.terminate(timeout=20)
        except subprocess.TimeoutExpired:
            daemon.kill()
