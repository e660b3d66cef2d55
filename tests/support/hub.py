"""Launch the real hub (``python -m hub_stub``) as a subprocess on a free loopback port.

Tests and benchmarks talk to the hub the way the CLI does, over real HTTP or TLS, so they
exercise uvicorn, the TLS layer and the SQLite store rather than an in-process test client.
The hub binds port 0 itself and reports the port through ``--port-file``: no race for a
"free" port under ``pytest -n 2``.

Use :func:`start_hub` (call ``stop()`` when done), or import the fixtures into an area's
conftest::

    from tests.support.hub import hub, module_hub  # noqa: F401
"""

from __future__ import annotations

import os
import secrets
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


@dataclass
class RunningHub:
    """A hub child process and what a client needs to reach and trust it."""

    url: str
    data_dir: Path
    siwe_domain: str  # the URL's host:port, which SIWE messages must name
    admin_token: str
    ca_cert: Path
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def tls(self) -> bool:
        """Whether the hub serves HTTPS (verify with ``ca_cert``)."""
        return self.url.startswith("https://")

    def client(self, **kwargs: object) -> httpx.Client:
        """An httpx client for this hub, trusting its CA when it serves TLS."""
        if self.tls:
            kwargs.setdefault("verify", ssl.create_default_context(cafile=str(self.ca_cert)))
        return httpx.Client(base_url=self.url, timeout=10.0, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        """Terminate the hub and wait for it (SIGKILL after 10 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_hub(
    data_dir: Path,
    *,
    tls: bool = False,
    extra_args: Sequence[str] = (),
) -> RunningHub:
    """Start ``python -m hub_stub`` on 127.0.0.1 and return once ``/health`` answers.

    ``tls=True`` serves HTTPS with a certificate from the hub's own CA (``--tls-self``).
    Logins and code claims are limited far above the hub's defaults unless ``extra_args``
    sets ``--auth-rate``/``--claim-rate``: a module of tests logs in dozens of wallets from
    one address within seconds, which the defaults rightly refuse.
    The admin token is written to ``data_dir/admin-token`` (0600) unless ``extra_args``
    names another ``--admin-token-file``; starting twice on one ``data_dir`` keeps it.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    token_file = data_dir / "admin-token"
    if "--admin-token-file" in extra_args:
        token_file = Path(extra_args[list(extra_args).index("--admin-token-file") + 1])
    elif not token_file.exists():
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    port_file = data_dir / f"port-{secrets.token_hex(4)}"
    log = data_dir / "hub.log"
    args = [
        sys.executable, "-m", "hub_stub",
        "--host", "127.0.0.1", "--port", "0", "--port-file", str(port_file),
        "--data-dir", str(data_dir),
    ]  # fmt: skip
    if "--admin-token-file" not in extra_args:
        args += ["--admin-token-file", str(token_file)]
    for flag in ("--auth-rate", "--claim-rate"):
        if flag not in extra_args:
            args += [flag, "1000/s:10000"]
    if tls:
        args.append("--tls-self")
    args += list(extra_args)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    with open(log, "ab") as log_handle:
        process = subprocess.Popen(
            args, cwd=REPO, env=env, stdout=log_handle, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + START_TIMEOUT
    ca_cert = data_dir / "ca" / "ca.pem"
    try:
        while not port_file.exists():
            if process.poll() is not None:
                raise RuntimeError(f"hub exited with {process.returncode}: {log.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"hub did not bind within {START_TIMEOUT} s: {log.read_text()}")
            time.sleep(0.05)
        port = int(port_file.read_text())
        port_file.unlink()
        scheme = "https" if tls else "http"
        hub = RunningHub(
            url=f"{scheme}://127.0.0.1:{port}",
            data_dir=data_dir,
            siwe_domain=f"127.0.0.1:{port}",
            admin_token=token_file.read_text().strip(),
            ca_cert=ca_cert,
            process=process,
            log=log,
        )
        with hub.client() as client:
            while True:
                try:
                    if client.get("/health").status_code == 200:
                        return hub
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"hub is not healthy: {log.read_text()}")
                time.sleep(0.05)
    except BaseException:
        if process.poll() is None:
            process.kill()
            process.wait()
        raise


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[RunningHub]:
    """A fresh plain-HTTP hub for one test."""
    running = start_hub(tmp_path / "hub")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def module_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    """One plain-HTTP hub shared by a module's tests (for tests that do not interfere)."""
    running = start_hub(tmp_path_factory.mktemp("hub"))
    yield running
    running.stop()
