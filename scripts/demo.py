"""`make demo`: the whole local round trip, with real parts only.

1. A provider asks `worldland doctor` whether this host is ready (on a machine without a GPU
   the truthful answer is NOT READY, exit 1, and that is part of a successful demo).
2. A local chain (anvil) runs the payment contract (`worldland-hub chain deploy`); a renter
   makes a wallet and escrows test tokens in it.
3. An embedded hub starts: `python -m hub_stub` with SQLite, TLS from its own CA, and
   settlement on (the hot wallet's key file, 0600).
4. The provider makes a wallet and registers: SIWE login, node registration, mTLS cert.
5. The node daemon starts for that node (`worldland daemon` on 127.0.0.1:8444, where doctor
   looks): `curl -k .../health`, the renter's GPU pod's usage reaching the hub's ledger to
   the second, and `worldland doctor --only daemon.health` ok. No cluster runs here, so the
   pods come from the stand-in Kubernetes API the tests use (tests/support/fakekube.py).
6. The hub operator registers a pod for the renter: a real OpenSSH sshd on loopback.
7. The renter logs in, sends a file to the pod and receives it back, then (8.) uses a
   one-time code the way runpodctl does.
9. Settlement: the hub's worker has paid the GPU pod's metered seconds to the provider on
   chain; `worldland balance` shows the renter's side and `worldland earnings` ends the demo
   with the provider's confirmed payment.

Every step runs the installed `worldland` command in a subprocess, as a person would.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.anvil import RunningAnvil, start_anvil  # noqa: E402
from tests.support.fakekube import (  # noqa: E402
    FakeKube,
    running_status,
    start_fake_kube,
    terminated_status,
)
from tests.support.hub import RunningHub, start_hub  # noqa: E402
from tests.support.sshd import SshdServer, sshd_missing_reason, start_sshd  # noqa: E402

BIN = Path(sys.executable).parent
WORLDLAND = str(BIN / "worldland")


class DemoFailed(Exception):
    pass


def banner(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def sh(args: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> str:
    """Run one worldland command, echo it and its output, fail the demo on an unexpected code."""
    shown = " ".join(shlex.quote(a) for a in ["worldland", *args[1:]])
    print(f"$ {shown}", flush=True)
    proc = subprocess.run(args, env=env, text=True, capture_output=True)
    sys.stderr.write(proc.stderr)  # progress and notes come first, as in a terminal
    sys.stdout.write(proc.stdout)
    if proc.returncode not in ok:
        raise DemoFailed(f"{shown} exited {proc.returncode}")
    return proc.stdout


def actor_env(home: Path, hub: RunningHub) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        WORLDLAND_HOME=str(home),
        WORLDLAND_HUB=hub.url,
        WORLDLAND_HUB_CA=str(hub.ca_cert),
        COLUMNS="100",
    )
    return env


def register_pod(hub: RunningHub, pod_id: str, renter: str, node_id: str, sshd: SshdServer) -> None:
    """The operator places the pod on the provider's node (so that node can bill for it)."""
    with hub.client(headers={"Authorization": f"Bearer {hub.admin_token}"}) as client:
        response = client.post(
            "/v1/admin/pods",
            json={
                "pod_id": pod_id,
                "renter_address": renter,
                "node_id": node_id,
                "ssh_host": sshd.host,
                "ssh_port": sshd.port,
                "ssh_user": sshd.user,
                "host_key": sshd.host_public_key,
            },
        )
        response.raise_for_status()
    print(
        f"hub operator: pod {pod_id} on node {node_id} -> {sshd.user}@{sshd.host}:{sshd.port} "
        "(host key pinned)"
    )


DAEMON_PORT = 8444  # where `worldland doctor`'s daemon.health looks
DEMO_NODE = "demo-gpu-node"
GPU_POD = "gpu-pod-demo"


def iso(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def until(what: Callable[[], bool], seconds: float, failure: str) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        if time.monotonic() > deadline:
            raise DemoFailed(failure)
        time.sleep(0.2)


def log_lines(log: Path, *events: str) -> list[dict[str, object]]:
    lines = []
    for text in log.read_text().splitlines():
        with contextlib.suppress(ValueError):
            line = json.loads(text)
            if line.get("event") in events:
                lines.append(line)
    return lines


@contextlib.contextmanager
def node_daemon(work: Path, env: dict[str, str], kube: FakeKube) -> Iterator[Path]:
    """`worldland daemon` in the background for the demo node; its log file."""
    kubeconfig = kube.write_kubeconfig(work / "kubeconfig")
    log = work / "daemon.log"
    args = [
        WORLDLAND, "daemon", "--listen", f"127.0.0.1:{DAEMON_PORT}",
        "--metrics-listen", "127.0.0.1:0", "--kubeconfig", str(kubeconfig),
        "--node-name", DEMO_NODE, "--heartbeat", "2", "--slice", "5",
    ]  # fmt: skip
    print(f"$ {' '.join(shlex.quote(a) for a in ['worldland', *args[1:]])} &", flush=True)
    with log.open("wb") as out:
        process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        until(
            lambda: bool(log_lines(log, "daemon.started")) or process.poll() is not None,
            30,
            "the daemon did not start within 30 s",
        )
        if process.poll() is not None:
            raise DemoFailed(f"the daemon exited {process.returncode}: {log.read_text()[-800:]}")
        yield log
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        print(f"daemon stopped by SIGTERM, exit status {process.returncode}")


def ledger(hub: RunningHub, env: dict[str, str], node_id: str) -> dict[str, object]:
    """The hub's usage totals for the node, read with the provider's own session."""
    saved = json.loads((Path(env["WORLDLAND_HOME"]) / "session.json").read_text())
    token = next(iter(saved["sessions"].values()))["token"]  # the provider's one hub
    with hub.client(headers={"Authorization": f"Bearer {token}"}) as client:
        response = client.get("/v1/usage", params={"node_id": node_id})
        response.raise_for_status()
        return dict(response.json())


def daemon_part(
    work: Path, hub: RunningHub, provider: dict[str, str], node_id: str, renter: str
) -> None:
    banner(f"5. Node daemon on 127.0.0.1:{DAEMON_PORT}: node API, heartbeats, usage metering")
    with start_fake_kube() as kube, node_daemon(work, provider, kube) as log:
        started = log_lines(log, "daemon.started")[0]
        print(f"daemon.started: listen={started['listen']} metrics={started['metrics']}")
        url = f"https://127.0.0.1:{DAEMON_PORT}/health"
        curl = shutil.which("curl")
        if curl:
            print(f"$ curl -k {url}", flush=True)
            subprocess.run([curl, "-sk", url], check=True)
            print()
        register_pod_for_usage(hub, GPU_POD, node_id, renter)
        begun = int(time.time()) - 12
        kube.cluster.add_pod(
            GPU_POD, node_name=DEMO_NODE, gpus=1, status=running_status(iso(begun))
        )
        print(f"kubelet: pod {GPU_POD} (1 nvidia.com/gpu) running since {iso(begun)}")
        until(lambda: bool(log_lines(log, "usage.sent")), 20, "no usage reached the hub in 20 s")
        time.sleep(2)
        ended = int(time.time())
        kube.cluster.set_pod_status("default", GPU_POD, terminated_status(iso(begun), iso(ended)))
        print(f"kubelet: pod {GPU_POD} finished at {iso(ended)}: {ended - begun} s of GPU time")
        until(
            lambda: int(str(ledger(hub, provider, node_id)["seconds"])) == ended - begun,
            20,
            "the hub's ledger did not reach the pod's seconds in 20 s",
        )
        billed = ledger(hub, provider, node_id)
        print(
            f"hub ledger for node {node_id}: {billed['seconds']} s in {billed['events']} "
            f"slices, {billed['wei']} wei (= seconds x price per GPU-second)"
        )
        for line in log_lines(log, "interval.opened", "interval.closed", "usage.sent"):
            print(json.dumps(line))
        sh([WORLDLAND, "doctor", "--only", "daemon.health"], provider)


def register_pod_for_usage(hub: RunningHub, pod_id: str, node_id: str, renter: str) -> None:
    """The operator places the renter's GPU pod on the node (the hub bills only placed pods)."""
    body = {
        "pod_id": pod_id,
        "renter_address": renter,
        "node_id": node_id,
        "ssh_host": "127.0.0.1",
        "ssh_port": 2222,
        "ssh_user": "root",
        "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ0ZXN0a2V5Zm9ydGVzdHM",
    }
    with hub.client(headers={"Authorization": f"Bearer {hub.admin_token}"}) as client:
        client.post("/v1/admin/pods", json=body).raise_for_status()
    print(f"hub operator: pod {pod_id} placed on node {node_id}")


def sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


GPU_MODEL = "NVIDIA H100 80GB HBM3"
PRICE = 1_000_000_000  # wei per GPU-second: `worldland register`'s default, and the rate
ETHER = 10**18


def key_file(path: Path, key: bytes) -> Path:
    """A key file as its owner keeps it: 64 hex characters, 0600 from the first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex() + "\n")
    return path


def chain_part(work: Path, chain: RunningAnvil, renter_home: Path) -> list[str]:
    """Deploy the market on the local chain, escrow the renter's tokens; the hub's flags."""
    from eth_account import Account

    from hub_stub.chain import Artifact, Contract

    banner(f"2. A local chain (anvil) at {chain.url}: the payment contract, the renter's escrow")
    env = dict(os.environ, WORLDLAND_HOME=str(renter_home), COLUMNS="100")
    made = json.loads(sh([WORLDLAND, "wallet", "new", "--json"], env))
    renter = Account.from_key(bytes.fromhex(Path(made["key_file"]).read_text().strip()))
    operator = key_file(work / "operator.key", bytes(chain.accounts[0].key))
    settler = Account.create()
    settler_key = key_file(work / "settler.key", bytes(settler.key))
    for address in (settler.address, renter.address):  # gas money from a funded dev account
        chain.rpc.send(chain.accounts[1], b"", to=address, gas=21_000, value=ETHER)
    deploy = [
        "worldland-hub", "chain", "deploy", "--chain-rpc", chain.url,
        "--operator-key-file", str(operator), "--settler-key-file", str(settler_key),
        "--rate", f"{GPU_MODEL}={PRICE}", "--mint", f"{renter.address}={ETHER}",
    ]  # fmt: skip
    print(f"$ {shlex.join(deploy)}", flush=True)
    deployed = subprocess.run(
        [sys.executable, "-m", "hub_stub", *deploy[1:]],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    ).stdout
    print(deployed, end="")
    market = json.loads(deployed)
    token = Contract(chain.rpc, Artifact.bundled("TestToken"), market["token"])
    payments = Contract(
        chain.rpc, Artifact.bundled("WorldlandPayments"), market["payments_contract"]
    )
    escrow = ETHER // 10
    token.transact(renter, "approve", payments.address, escrow)
    receipt = payments.transact(renter, "deposit", escrow)
    print(
        f"renter {renter.address}: approve + deposit {escrow} wei (0.1 WLT) into the "
        f"escrow, block {receipt.block_number}"
    )
    return [
        "--chain-rpc", chain.url, "--payments-contract", payments.address,
        "--settler-key-file", str(settler_key), "--confirmations", "1",
        "--settle-interval", "0.5",
    ]  # fmt: skip


def round_trip(work: Path) -> None:
    chain = start_anvil(work / "anvil")
    try:
        settlement = chain_part(work, chain, work / "renter")
        hub = start_hub(work / "hub", tls=True, extra_args=settlement)
        try:
            hub_part(work, hub)
        finally:
            hub.stop()
    finally:
        chain.stop()


def hub_part(work: Path, hub: RunningHub) -> None:
    banner(f"3. Embedded hub (SQLite, TLS from its own CA, settlement on) at {hub.url}")
    provider = actor_env(work / "provider", hub)
    renter = actor_env(work / "renter", hub)
    sh([WORLDLAND, "diag", "network", "--timeout", "3"], provider, ok=(0, 1))
    renter_address = json.loads(sh([WORLDLAND, "wallet", "address", "--json"], renter))["address"]

    banner("4. Provider: wallet, SIWE login, node registration, mTLS certificate")
    sh([WORLDLAND, "wallet", "new"], provider)
    gpu_flags = ["--gpu-type", GPU_MODEL, "--memory-gb", "80"]
    sh([WORLDLAND, "register", "--host", "127.0.0.1", *gpu_flags], provider)
    registered = sh([WORLDLAND, "register", "--host", "127.0.0.1", *gpu_flags, "--json"], provider)
    node_id = json.loads(registered)["node_id"]
    sh([WORLDLAND, "certs", "status"], provider)
    sh([WORLDLAND, "whoami"], provider)
    daemon_part(work, hub, provider, node_id, renter_address)

    reason = sshd_missing_reason()
    if reason:
        print(f"skipping the pod transfers: {reason}")
    else:
        banner("6. A pod: a real OpenSSH sshd on loopback, registered by the hub operator")
        with start_sshd(work / "pod") as sshd:
            renter_part(work, hub, renter, renter_address, node_id, sshd)
    settlement_part(hub, provider, renter)


def settlement_part(hub: RunningHub, provider: dict[str, str], renter: dict[str, str]) -> None:
    banner("9. Settlement: the GPU pod's metered seconds, paid to the provider on chain")

    def paid() -> bool:
        earned = json.loads(run_quiet([WORLDLAND, "earnings", "--json"], provider))
        total = earned["total"]
        return int(total["billed_wei"]) > 0 and total["paid_wei"] == total["billed_wei"]

    until(paid, 30, "the hub did not pay the provider within 30 s")
    sh([WORLDLAND, "login"], renter)
    sh([WORLDLAND, "balance"], renter)
    sh([WORLDLAND, "earnings"], provider)


def run_quiet(args: list[str], env: dict[str, str]) -> str:
    """A worldland command whose output the demo reads rather than shows."""
    return subprocess.run(args, env=env, text=True, capture_output=True, check=True).stdout


def renter_part(
    work: Path,
    hub: RunningHub,
    renter: dict[str, str],
    renter_address: str,
    node_id: str,
    sshd: SshdServer,
) -> None:
    register_pod(hub, "pod-demo-1", renter_address, node_id, sshd)

    banner("7. Renter: login, send a file to the pod, receive it back, verified")
    sh([WORLDLAND, "login"], renter)
    payload = work / "dataset.bin"
    payload.write_bytes(os.urandom(8 * 1024 * 1024))
    ident = ["--identity", str(sshd.client_key)]
    remote_dir = sshd.directory / "workspace"
    remote_dir.mkdir()
    sh([WORLDLAND, "send", str(payload), f"pod-demo-1:{remote_dir}", *ident], renter)
    back = work / "back"
    back.mkdir()
    source = f"pod-demo-1:{remote_dir / payload.name}"
    sh([WORLDLAND, "receive", source, str(back), *ident], renter)
    if sha256(back / payload.name) != sha256(payload):
        raise DemoFailed("the received file differs from the one sent")
    print(f"sha256 {sha256(payload)[:16]}... identical after the round trip")

    banner("8. One-time code (runpodctl style): send inside the pod, receive anywhere")
    out = sh(
        [WORLDLAND, "send", str(remote_dir / payload.name), "--pod", "pod-demo-1", "--json"],
        renter,
    )
    code = json.loads(out)["code"]
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    sh([WORLDLAND, "receive", code, str(elsewhere), *ident], renter)
    sh([WORLDLAND, "receive", code, str(elsewhere), *ident], renter, ok=(1, 4))
    print("the code worked once and was refused the second time")


def main() -> int:
    banner("1. Provider: is this host ready?")
    print("$ worldland doctor", flush=True)
    rc = subprocess.call([WORLDLAND, "doctor"])
    if rc not in (0, 1):
        print(f"demo failed: worldland doctor exited {rc}", file=sys.stderr)
        return rc
    with tempfile.TemporaryDirectory(prefix="worldland-demo-") as tmp:
        try:
            round_trip(Path(tmp))
        except DemoFailed as e:
            print(f"\ndemo failed: {e}", file=sys.stderr)
            return 1
    banner(
        "Demo complete: doctor, chain, hub, SIWE login, node registration, mTLS, node daemon "
        "and usage, pod transfer, code, on-chain settlement"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
