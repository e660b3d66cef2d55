"""A real OpenSSH sshd on a free loopback port, playing a pod's sshd in tests and benchmarks.

Transfers are only trustworthy when tested against the server renters actually hit, so this
starts Debian's /usr/sbin/sshd (not a Python stand-in) as a child process with its own host
key, one authorised client key and the internal SFTP server. Everything lives in one
directory the caller owns; nothing touches /etc/ssh or ~/.ssh.

Use :func:`start_sshd` as a context manager, or the ``sshd`` pytest fixture of an area's
conftest that wraps it.  :meth:`SshdServer.kill_sessions` cuts every open connection (by
killing the per-connection sshd children) while the listener keeps accepting, which is how
tests simulate a dropped link.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.procs import process_table

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "/usr/bin/ssh-keygen"
# Runs a command as root without the capabilities that let root read and write any file, so
# file modes deny it as they deny a renter (tests run as root; an account of its own would
# change the machine's passwd).
NO_DAC_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def sshd_missing_reason() -> str | None:
    """Why a real sshd cannot run here (for pytest.skip), or None when it can."""
    for exe in (SSHD, SSH_KEYGEN):
        if not os.access(exe, os.X_OK):
            return f"{exe} not installed (apt-get install openssh-server openssh-client)"
    return None


@dataclass
class SshdServer:
    """A running sshd and the files a client needs to reach it."""

    host: str
    port: int
    user: str
    directory: Path
    host_key: Path
    client_key: Path
    known_hosts: Path
    process: subprocess.Popen[bytes]

    @property
    def host_public_key(self) -> str:
        """The host key as "ssh-ed25519 AAAA..." (what the hub pins for a pod)."""
        algo, blob = Path(f"{self.host_key}.pub").read_text().split()[:2]
        return f"{algo} {blob}"

    def url(self, path: str) -> str:
        """An ssh:// URL for an absolute path on this server."""
        return f"ssh://{self.user}@{self.host}:{self.port}{path}"

    def session_pids(self) -> list[int]:
        """The per-connection sshd children (and their subsystem children) right now."""
        parent_of = {pid: ppid for pid, (_, ppid) in process_table().items()}
        found: list[int] = []
        frontier = [self.process.pid]
        while frontier:
            parent = frontier.pop()
            children = [pid for pid, ppid in parent_of.items() if ppid == parent]
            found.extend(children)
            frontier.extend(children)
        return found

    def kill_sessions(self) -> int:
        """SIGKILL every connection's sshd process; the listener stays up. Returns the count.

        Commands the sessions run (a remote hash, a shell still reading its rc files) are left
        to see the dropped link and exit, as on a real pod: SIGKILLing a shell mid-startup can
        leave a lock behind (pyenv's rehash lock made every later exec wait 60 s).
        """
        pids = [p for p in self.session_pids() if _command_name(p) == "sshd"]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.kill_sessions()
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def account_home(home: Path, bashrc: str) -> list[str]:
    """sshd_config lines that give the account ``home`` as HOME, with this ``~/.bashrc``.

    The same user, another HOME (sshd's ``SetEnv`` overrides the one from passwd), so a test
    can give the remote account a slow shell start-up without touching a real home: bash
    reads ``$HOME/.bashrc`` for every command sshd runs (Debian's bash sources it when
    SSH_CLIENT is set), as a pod whose ``~/.bashrc`` runs ``pyenv init`` or ``conda`` does.
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / ".bashrc").write_text(bashrc)
    return [f"SetEnv HOME={home}"]


def _write_config(
    directory: Path, port: int, host_key: Path, authorized: Path, extra: list[str]
) -> Path:
    config = directory / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {authorized}",
                f"PidFile {directory / 'sshd.pid'}",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                "StrictModes no",
                "MaxStartups 100",
                "MaxSessions 64",
                "LogLevel VERBOSE",
                # internal-sftp needs no extra binary and runs inside the session process.
                "Subsystem sftp internal-sftp",
                *extra,
                "",
            ]
        )
    )
    return config


def _wait_listening(proc: subprocess.Popen[bytes], log: Path, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if f"port {port}" in log.read_text(errors="replace"):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return True
        time.sleep(0.02)
    return False


@contextlib.contextmanager
def start_sshd(
    directory: Path,
    *,
    host_key: Path | None = None,
    extra_config: list[str] | None = None,
    prefix: list[str] | None = None,
) -> Iterator[SshdServer]:
    """Run sshd until the block ends.

    ``host_key`` reuses a key file; ``extra_config`` appends sshd_config lines, e.g.
    ``["ForceCommand internal-sftp"]`` for an account that allows SFTP but no shell.
    ``prefix`` runs sshd under another command, such as :data:`NO_DAC_OVERRIDE`.
    """
    reason = sshd_missing_reason()
    if reason:
        raise RuntimeError(reason)
    directory.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    if host_key is None:
        host_key = directory / "ssh_host_ed25519_key"
        if not host_key.exists():  # a restart in the same directory keeps its identity
            _keygen(host_key, "worldland-test-host")
    client_key = directory / "id_ed25519"
    if not client_key.exists():
        _keygen(client_key, "worldland-test-client")
    authorized = directory / "authorized_keys"
    shutil.copyfile(f"{client_key}.pub", authorized)
    log = directory / "sshd.log"

    last_log = ""
    for _attempt in range(5):
        # Another worker may grab the port between probing and binding: retry with a new one.
        port = _free_port()
        config = _write_config(directory, port, host_key, authorized, extra_config or [])
        with log.open("wb") as log_file:
            proc = subprocess.Popen(
                [*(prefix or []), SSHD, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        if _wait_listening(proc, log, port, timeout=10):
            break
        proc.kill()
        proc.wait()
        last_log = log.read_text(errors="replace")
    else:
        raise RuntimeError(f"sshd did not start:\n{last_log}")

    known_hosts = directory / "known_hosts"
    algo, blob = Path(f"{host_key}.pub").read_text().split()[:2]
    known_hosts.write_text(f"[127.0.0.1]:{port} {algo} {blob}\n")
    server = SshdServer(
        host="127.0.0.1",
        port=port,
        user=getpass.getuser(),
        directory=directory,
        host_key=host_key,
        client_key=client_key,
        known_hosts=known_hosts,
        process=proc,
    )
    try:
        yield server
    finally:
        server.stop()
