"""Network namespaces for tests that need their own network: WireGuard tunnels, bridges.

Each namespace gets a unique name and is deleted afterwards with whatever interfaces are in
it; WireGuard interfaces run in userspace (``wireguard-go``, which ``wg-quick`` falls back to
when the kernel has no module), and their processes are ended with the namespace. Tests skip
with the reason where namespaces cannot be made (not root, no iproute2).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


def in_netns(name: str, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside the namespace ``name`` (environment extended by ``env``)."""
    return subprocess.run(
        ["ip", "netns", "exec", name, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def skip_reason(*tools: str) -> str | None:
    """Why namespace tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    missing = [t for t in ("ip", *tools) if shutil.which(t) is None]
    if missing:
        return f"not installed: {', '.join(missing)} (make test installs them as root)"
    return None


def _pids_in(name: str) -> list[int]:
    listed = ip("netns", "pids", name)
    return [int(p) for p in listed.stdout.split()] if listed.returncode == 0 else []


@contextmanager
def namespace(prefix: str = "wl") -> Iterator[str]:
    """A fresh namespace with loopback up; every process left in it is killed at the end."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    if ip("netns", "add", name).returncode != 0:
        pytest.skip("cannot create network namespaces here")
    try:
        ip("-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        for pid in _pids_in(name):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        ip("netns", "delete", name)
