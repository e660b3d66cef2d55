"""Run a real local EVM (anvil, pinned in tools/package.json) for the contract tests.

anvil binds port 0 itself and prints the address it listens on, so two pytest workers never
race for a "free" port. The funded accounts' keys come from anvil's own ``--config-out`` file:
the tests sign with eth-account exactly as the hub's hot wallet will.

Use :func:`start_anvil` (call ``stop()`` when done) or the ``anvil`` fixture (one chain per
test module; each test deploys its own contracts, so tests do not see each other's state).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from hub_stub.chain import Rpc

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools" / "node_modules"
ANVIL = TOOLS / ".bin" / "anvil"
START_TIMEOUT = 30.0
LISTENING = re.compile(rb"Listening on (\S+):(\d+)")


@dataclass
class RunningAnvil:
    """An anvil child process, its JSON-RPC client and its funded accounts."""

    url: str
    rpc: Rpc
    accounts: list[LocalAccount]
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """Close the client, terminate anvil and wait for it (SIGKILL after 10 s)."""
        self.rpc.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def require_tool(path: Path, what: str) -> None:
    """Skip when a chain tool is missing and we are not root; fail when root.

    ``make test`` installs the tools (``make tools``) and, as root, Debian's node and npm, so a
    missing tool under root means the install step is broken, which must not pass silently.
    """
    if path.exists():
        return
    message = f"{what} not installed ({path.relative_to(REPO)}): run `make tools`"
    if os.geteuid() == 0:
        pytest.fail(message)
    pytest.skip(message)


def start_anvil(workdir: Path, *, accounts: int = 20) -> RunningAnvil:
    """Start anvil on 127.0.0.1 (port chosen by the kernel) and return once it answers."""
    require_tool(ANVIL, "anvil")
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "anvil.log"
    config = workdir / "anvil-config.json"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(ANVIL),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--accounts",
                str(accounts),
                "--config-out",
                str(config),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        port = _wait_listening(process, log)
        url = f"http://127.0.0.1:{port}"
        rpc = Rpc(url)
        rpc.chain_id  # noqa: B018 - answers only once anvil serves JSON-RPC
        keys = json.loads(config.read_text())["private_keys"]
        funded = [Account.from_key(key) for key in keys]
    except BaseException:
        process.kill()
        process.wait()
        raise
    return RunningAnvil(url=url, rpc=rpc, accounts=funded, process=process, log=log)


def _wait_listening(process: subprocess.Popen[bytes], log: Path) -> int:
    """The port from anvil's "Listening on HOST:PORT" line (printed once it has bound)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        match = LISTENING.search(log.read_bytes())
        if match:
            return int(match.group(2))
        if process.poll() is not None:
            break
        time.sleep(0.05)
    tail = log.read_bytes()[-2000:].decode(errors="replace")
    raise RuntimeError(f"anvil did not start (exit {process.poll()}):\n{tail}")


@pytest.fixture(scope="module")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAnvil]:
    """A fresh local chain for the test module, stopped afterwards."""
    chain = start_anvil(tmp_path_factory.mktemp("anvil"))
    try:
        yield chain
    finally:
        chain.stop()
