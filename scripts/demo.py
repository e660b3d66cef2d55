"""`make demo`: the whole local round trip, with real parts only.

1. A provider asks `worldland doctor` whether this host is ready (on a machine without a GPU
   the truthful answer is NOT READY, exit 1, and that is part of a successful demo).
2. An embedded hub starts: `python -m hub_stub` with SQLite and TLS from its own CA.
3. The provider makes a wallet and registers: SIWE login, node registration, mTLS cert.
4. The hub operator registers a pod for a renter: a real OpenSSH sshd on loopback.
5. The renter logs in with another wallet, sends a file to the pod and receives it back,
   then uses a one-time code the way runpodctl does.

Every step runs the installed `worldland` command in a subprocess, as a person would.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

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


def sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def round_trip(work: Path) -> None:
    hub = start_hub(work / "hub", tls=True)
    try:
        banner(f"2. Embedded hub (SQLite, TLS from its own CA) at {hub.url}")
        provider = actor_env(work / "provider", hub)
        renter = actor_env(work / "renter", hub)
        sh([WORLDLAND, "diag", "network", "--timeout", "3"], provider, ok=(0, 1))

        banner("3. Provider: wallet, SIWE login, node registration, mTLS certificate")
        sh([WORLDLAND, "wallet", "new"], provider)
        gpu_flags = ["--gpu-type", "NVIDIA H100 80GB HBM3", "--memory-gb", "80"]
        sh([WORLDLAND, "register", "--host", "127.0.0.1", *gpu_flags], provider)
        registered = sh(
            [WORLDLAND, "register", "--host", "127.0.0.1", *gpu_flags, "--json"], provider
        )
        node_id = json.loads(registered)["node_id"]
        sh([WORLDLAND, "certs", "status"], provider)
        sh([WORLDLAND, "whoami"], provider)

        reason = sshd_missing_reason()
        if reason:
            print(f"skipping the renter part: {reason}")
            return
        banner("4. A pod: a real OpenSSH sshd on loopback, registered by the hub operator")
        with start_sshd(work / "pod") as sshd:
            renter_part(work, hub, renter, node_id, sshd)
    finally:
        hub.stop()


def renter_part(
    work: Path, hub: RunningHub, renter: dict[str, str], node_id: str, sshd: SshdServer
) -> None:
    renter_address = json.loads(sh([WORLDLAND, "wallet", "new", "--json"], renter))["address"]
    register_pod(hub, "pod-demo-1", renter_address, node_id, sshd)

    banner("5. Renter: login, send a file to the pod, receive it back, verified")
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

    banner("6. One-time code (runpodctl style): send inside the pod, receive anywhere")
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
    banner("Demo complete: doctor, hub, SIWE login, node registration, mTLS, pod transfer, code")
    return 0


if __name__ == "__main__":
    sys.exit(main())
