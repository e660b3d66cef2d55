"""The only door to the operating system.

Everything that runs a command, reads or writes a system file, looks at modes and owners,
or talks to NVML goes through :class:`Host`.  Production code uses ``Host(root=Path("/"))``;
tests point ``root`` at a temporary tree and ``search_path`` at a directory of fake tools, so
the same requirement code runs against a fake machine without any monkeypatching of the OS.

Paths given to a Host are always the absolute paths of the managed system ("/etc/containerd/
config.toml"); :meth:`Host.path` maps them under ``root`` the way ``dpkg --root`` does.
Commands are found on ``search_path`` and are not chrooted.

Why one module of about 800 lines: it is the whole boundary, and the rule "only host.py
touches the OS" (CONTRIBUTING.md) is checked by reading one file. Its parts (paths, files,
databases, temporary directories, commands, NVML) stand in that order under banners.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shlex
import shutil
import socket
import sqlite3
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
# How long to drain the pipes of a command killed for running past its timeout.
KILL_GRACE = 1.0


def _logged_argv(argv: Sequence[str]) -> str:
    """The program and its leading words (``systemctl is-active kubelet``), for the -vv log.

    From the first option on the words are left out: options carry values such as
    kubeadm's ``--token``, and the log is what people paste into tickets.
    """
    shown: list[str] = []
    for word in argv:
        if word.startswith("-"):
            shown.append("...")
            break
        shown.append(shlex.quote(word))
    return " ".join(shown)


class HostError(Exception):
    """A file or command problem that a caller should report, not crash on."""


class NvmlUnavailable(HostError):
    """NVML could not be loaded or initialised (no driver, no GPU, or a wedged driver)."""


@dataclass(frozen=True)
class CommandResult:
    """What a command did; never raises for a failing, missing or hanging command."""

    argv: tuple[str, ...]
    returncode: int | None
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    not_found: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe_failure(self) -> str:
        """One line for a report: why this command did not succeed."""
        name = self.argv[0] if self.argv else "?"
        if self.not_found:
            return f"{name}: command not found"
        if self.timed_out:
            return f"{name}: no answer within {self.duration:.1f}s (timed out)"
        detail = (self.stderr or self.stdout).strip().splitlines()
        tail = detail[-1] if detail else "no output"
        return f"{name} exited {self.returncode}: {tail}"


@dataclass(frozen=True)
class FileStat:
    """What a path is and whose, as the journal records it before changing the path."""

    kind: str  # "file", "dir", "link" or "other"
    mode: int  # permission bits
    uid: int
    gid: int


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    uuid: str
    memory_total_mib: int
    pci_bus_id: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GpuSample:
    """One GPU's live readings for the node daemon; None where NVML cannot read a value.

    ``unreadable`` names each missing reading with NVML's reason (a consumer card has no ECC
    counters, a MIG slice no power reading), so a caller can tell "zero" from "unknown".
    """

    index: int
    uuid: str
    name: str
    pci_bus_id: str
    utilization_gpu_pct: int | None
    utilization_memory_pct: int | None
    memory_used_mib: int | None
    memory_total_mib: int | None
    temperature_c: int | None
    power_w: float | None
    ecc_sbe_volatile: int | None
    ecc_dbe_volatile: int | None
    unreadable: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class XidEvent:
    """An XID error NVML reported for a GPU (a driver-detected fault, e.g. 79: fell off the bus)."""

    index: int
    uuid: str
    xid: int


@dataclass(frozen=True)
class NvmlSnapshot:
    driver_version: str
    cuda_version: str
    gpus: tuple[GpuInfo, ...]


def _cuda_version_string(raw: int) -> str:
    """NVML reports CUDA 12.2 as 12020."""
    return f"{raw // 1000}.{(raw % 1000) // 10}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Host:
    """A machine to inspect and change: the real one, or a fake root for tests."""

    def __init__(
        self,
        root: Path = Path("/"),
        *,
        search_path: str | None = None,
        env: Mapping[str, str] | None = None,
        default_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.root = Path(root)
        self.search_path = search_path if search_path is not None else os.environ.get("PATH", "")
        self.env = dict(env) if env is not None else None
        self.default_timeout = default_timeout

    def hostname(self) -> str:
        """The managed system's name: its /etc/hostname under another root, else the kernel's."""
        if self.root != Path("/"):
            text = self.read_text("/etc/hostname")
            if text and text.strip():
                return text.strip()
        return socket.gethostname()

    # ----------------------------------------------------------------------------- paths

    def path(self, system_path: str | PurePosixPath) -> Path:
        """The real location of a path of the managed system."""
        p = PurePosixPath(system_path)
        if not p.is_absolute():
            raise ValueError(f"host paths are absolute, got {system_path!r}")
        return self.root.joinpath(*p.parts[1:])

    def exists(self, system_path: str) -> bool:
        return self.path(system_path).exists()

    def is_dir(self, system_path: str) -> bool:
        return self.path(system_path).is_dir()

    def listdir(self, system_path: str) -> list[str]:
        """Sorted entry names; an absent directory is empty."""
        try:
            return sorted(os.listdir(self.path(system_path)))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def glob(self, pattern: str) -> list[str]:
        """System paths (not real ones) matching an absolute glob pattern, sorted."""
        root = self.path("/")
        found = root.glob(pattern.lstrip("/"))
        return sorted("/" + str(p.relative_to(root)) for p in found)

    # ----------------------------------------------------------------------------- files

    def read_text(self, system_path: str) -> str | None:
        """File contents, or None when the file does not exist."""
        try:
            return self.path(system_path).read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, NotADirectoryError):
            return None
        except IsADirectoryError as e:
            raise HostError(f"{system_path} is a directory") from e
        except PermissionError as e:
            raise HostError(f"cannot read {system_path}: permission denied") from e

    def read_bytes(self, system_path: str) -> bytes | None:
        try:
            return self.path(system_path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except PermissionError as e:
            raise HostError(f"cannot read {system_path}: permission denied") from e

    def write_atomic(self, system_path: str, data: bytes | str, mode: int = 0o644) -> None:
        """Replace a file so that a reader sees either the old or the new bytes, never half.

        The temporary file is created with ``mode`` from its first byte (a key written with
        0600 is never briefly world-readable), fsynced, then renamed over the target.
        """
        target = self.path(system_path)
        payload = data.encode() if isinstance(data, str) else data
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        except OSError as e:  # a read-only /etc, a full disk: a message, not a traceback
            raise HostError(f"cannot write {system_path}: {e.strerror or e}") from e
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException as e:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if isinstance(e, OSError):
                raise HostError(f"cannot write {system_path}: {e.strerror or e}") from e
            raise
        self._fsync_dir(target.parent)

    def create_exclusive(self, system_path: str, data: bytes | str, mode: int = 0o600) -> None:
        """Write a new file atomically, refusing to replace one that exists."""
        target = self.path(system_path)
        if target.exists():
            raise HostError(f"{system_path} already exists; refusing to overwrite it")
        target.parent.mkdir(parents=True, exist_ok=True)
        payload = data.encode() if isinstance(data, str) else data
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            # link() fails if the name appeared meanwhile, unlike rename().
            os.link(tmp, target)
        except FileExistsError as e:
            raise HostError(f"{system_path} already exists; refusing to overwrite it") from e
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._fsync_dir(target.parent)

    def makedirs(self, system_path: str, mode: int = 0o755) -> None:
        self.path(system_path).mkdir(parents=True, exist_ok=True, mode=mode)

    def remove(self, system_path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(system_path).unlink()

    def remove_tree(self, system_path: str) -> None:
        """Delete a file, a link (never what it points to) or a whole directory."""
        target = self.path(system_path)
        try:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as e:
            raise HostError(f"cannot remove {system_path}: {e.strerror or e}") from e

    def stat(self, system_path: str) -> FileStat | None:
        """The path itself (a link is not followed), or None when nothing is there."""
        try:
            st = self.path(system_path).lstat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        kind = (
            "link"
            if stat.S_ISLNK(st.st_mode)
            else "dir"
            if stat.S_ISDIR(st.st_mode)
            else "file"
            if stat.S_ISREG(st.st_mode)
            else "other"
        )
        return FileStat(kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)

    def chown(self, system_path: str, uid: int, gid: int) -> None:
        """Give a path (not a link's target) back to its owner; a no-op when already so."""
        target = self.path(system_path)
        try:
            st = target.lstat()
            if (st.st_uid, st.st_gid) != (uid, gid):
                os.chown(target, uid, gid, follow_symlinks=False)
        except OSError as e:
            raise HostError(f"cannot chown {system_path}: {e.strerror or e}") from e

    @contextlib.contextmanager
    def exclusive_lock(self, system_path: str) -> Iterator[None]:
        """Hold an exclusive lock file for the block, or fail at once when another holds it.

        Two joins (or a join and a reset) on one host must not interleave their journals.
        """
        target = self.path(system_path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise HostError(f"cannot open {system_path}: {e.strerror or e}") from e
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise HostError(
                    f"another worldland join or reset holds {system_path}; wait for it to end"
                ) from None
            yield
        finally:
            os.close(fd)

    def readlink(self, system_path: str) -> str:
        try:
            return os.readlink(self.path(system_path))
        except OSError as e:
            raise HostError(f"cannot read the link {system_path}: {e.strerror or e}") from e

    def symlink(self, target: str, system_path: str) -> None:
        """Make ``system_path`` a link to ``target`` (taken as it is, like ``ln -s``)."""
        try:
            os.symlink(target, self.path(system_path))
        except OSError as e:
            raise HostError(f"cannot link {system_path}: {e.strerror or e}") from e

    def rename(self, source: str, target: str) -> None:
        """Move ``source`` over ``target`` atomically (both on the managed system)."""
        try:
            os.replace(self.path(source), self.path(target))
        except OSError as e:
            raise HostError(f"cannot move {source} to {target}: {e.strerror or e}") from e
        self._fsync_dir(self.path(target).parent)

    def chmod(self, system_path: str, mode: int) -> None:
        try:
            self.path(system_path).chmod(mode)
        except OSError as e:
            raise HostError(f"cannot chmod {system_path}: {e.strerror or e}") from e

    def append(self, system_path: str, data: str, mode: int = 0o600) -> None:
        """Append and fsync: a journal line is on disk before the step it records runs."""
        target = self.path(system_path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
            try:
                os.write(fd, data.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            raise HostError(f"cannot write {system_path}: {e.strerror or e}") from e

    @staticmethod
    def _fsync_dir(directory: Path) -> None:
        with contextlib.suppress(OSError):
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def mode(self, system_path: str) -> int | None:
        """Permission bits (e.g. 0o600), or None when absent."""
        try:
            return stat.S_IMODE(self.path(system_path).stat().st_mode)
        except FileNotFoundError:
            return None

    def owner_uid(self, system_path: str) -> int | None:
        try:
            return self.path(system_path).stat().st_uid
        except FileNotFoundError:
            return None

    # ------------------------------------------------------------------------- databases

    def sqlite(self, system_path: str) -> sqlite3.Connection:
        """A connection to an SQLite database file of the managed system (the daemon's outbox).

        A new file is made 0600 in a directory made 0700 before SQLite opens it, since SQLite
        would create it with the umask's mode and gives its -wal and -shm files the mode of
        the database file. The connection is in autocommit mode (the caller writes BEGIN and
        COMMIT: one transaction per state change) and may be used from any thread the caller
        serialises.
        """
        target = self.path(system_path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.close(os.open(target, os.O_RDWR | os.O_CREAT, 0o600))
            return sqlite3.connect(
                target, isolation_level=None, check_same_thread=False, timeout=10.0
            )
        except (OSError, sqlite3.Error) as e:
            raise HostError(f"cannot open the database {system_path}: {e}") from e

    # ------------------------------------------------------------------------- temp dirs

    def private_temp_dir(self, prefix: str, files: Mapping[str, str]) -> Path:
        """A new directory only we may enter (0700) holding ``files``, each new and 0600.

        For a helper program that reads its settings from files, such as the OpenSSH lane's
        one-line known_hosts. A real path in the system's temporary directory, not under
        ``root``: the program reads it as it is. :meth:`remove_temp_dir` removes it.
        """
        directory = Path(tempfile.mkdtemp(prefix=prefix))
        try:
            for name, text in files.items():
                fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(text)
        except BaseException:
            self.remove_temp_dir(directory)
            raise
        return directory

    def remove_temp_dir(self, directory: Path) -> None:
        """Remove a directory from :meth:`private_temp_dir` and all it holds; gone is fine."""
        shutil.rmtree(directory, ignore_errors=True)

    @staticmethod
    def umask() -> int:
        """This process's umask, without changing it where the kernel says it.

        Linux 4.7 and later give it in /proc/self/status. Elsewhere it can only be read by
        setting it and setting it back, which is process-wide: call this before starting
        threads that create files.
        """
        with contextlib.suppress(OSError), open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
        mask = os.umask(0o077)
        os.umask(mask)
        return mask

    # -------------------------------------------------------------------------- commands

    def which(self, name: str) -> str | None:
        return shutil.which(name, path=self.search_path)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run argv (never a shell string) with a timeout; output is captured, never inherited.

        A command that hangs is killed together with its children (its own process group),
        so a wedged nvidia-smi cannot keep doctor waiting.
        """
        result = self._run(argv, timeout=timeout, input=input, env=env)
        outcome = (
            "not found"
            if result.not_found
            else "timed out"
            if result.timed_out
            else f"exit {result.returncode}"
        )
        log.debug(
            "ran %s: %s in %.0f ms", _logged_argv(result.argv), outcome, result.duration * 1000
        )
        return result

    def _run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None,
        input: str | None,
        env: Mapping[str, str] | None,
    ) -> CommandResult:
        limit = self.default_timeout if timeout is None else timeout
        args = tuple(argv)
        start = time.monotonic()
        exe = self.which(args[0]) if args and "/" not in args[0] else (args[0] if args else None)
        if exe is None:
            return CommandResult(args, None, "", "", 0.0, not_found=True)
        run_env = dict(os.environ if self.env is None else self.env)
        run_env["PATH"] = self.search_path
        run_env.setdefault("LC_ALL", "C")
        if env:
            run_env.update(env)
        try:
            proc = subprocess.Popen(
                (exe, *args[1:]),
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                env=run_env,
                start_new_session=True,
            )
        except FileNotFoundError:
            return CommandResult(args, None, "", "", 0.0, not_found=True)
        except PermissionError as e:
            return CommandResult(args, 126, "", str(e), time.monotonic() - start)
        try:
            out, err = proc.communicate(input=input, timeout=limit)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            try:
                out, err = proc.communicate(timeout=KILL_GRACE)
            except subprocess.TimeoutExpired:
                # A descendant that left the process group (setsid) still holds our pipes;
                # its output is not worth waiting for.
                for pipe in (proc.stdout, proc.stderr):
                    if pipe is not None:
                        pipe.close()
                proc.wait()
                out, err = "", ""
            return CommandResult(args, None, out, err, time.monotonic() - start, timed_out=True)
        return CommandResult(args, proc.returncode, out, err, time.monotonic() - start)

    def spawn(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, pipe_size: int = 0
    ) -> subprocess.Popen[bytes] | None:
        """Start a long-running helper with its stdin, stdout and stderr on pipes to us.

        For streaming peers (the OpenSSH client carrying transfer data), unlike :meth:`run`,
        which waits. ``pipe_size`` enlarges both data pipes where Linux allows it (fewer
        wake-ups per GiB). None when the program is not installed.
        """
        args = tuple(argv)
        exe = self.which(args[0]) if "/" not in args[0] else args[0]
        if exe is None:
            return None
        run_env = dict(os.environ if self.env is None else self.env)
        if env:
            run_env.update(env)
        try:
            proc = subprocess.Popen(
                (exe, *args[1:]),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                bufsize=0,
                env=run_env,
                start_new_session=True,  # Ctrl-C reaches us, and we stop it cleanly
            )
        except OSError:
            return None
        set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
        if pipe_size and set_size is not None:
            for pipe in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError):
                    fcntl.fcntl(pipe.fileno(), set_size, pipe_size)  # type: ignore[union-attr]
        return proc

    def stop(self, process: subprocess.Popen[bytes], grace: float = 0.0) -> None:
        """Let a process from :meth:`spawn` end within ``grace`` seconds, else kill its group.

        Always reaps it. A process already reaped is never signalled: its pid, and so its
        group id, may belong to another process by now.
        """
        if grace:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace)
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 9)
        process.wait()

    def unix_socket_answers(self, system_path: str, timeout: float = 1.0) -> bool:
        """Whether a daemon accepts connections on a Unix socket of the managed system.

        A socket file can outlive its daemon; only a connect proves something listens.
        """
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect(str(self.path(system_path)))
            except OSError:
                return False
        return True

    # ------------------------------------------------------------------------------ NVML

    def nvml(self) -> NvmlSnapshot:
        """Driver, CUDA version and every GPU as NVML reports them.

        Raises NvmlUnavailable with NVML's own words when the library or driver is missing.
        """
        import pynvml

        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as e:
            raise NvmlUnavailable(str(e) or type(e).__name__) from e
        try:
            driver = _text(pynvml.nvmlSystemGetDriverVersion())
            cuda = _cuda_version_string(pynvml.nvmlSystemGetCudaDriverVersion())
            gpus = []
            for i in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(i)
                mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
                pci = pynvml.nvmlDeviceGetPciInfo(handle)
                gpus.append(
                    GpuInfo(
                        index=i,
                        name=_text(pynvml.nvmlDeviceGetName(handle)),
                        uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
                        memory_total_mib=int(mem.total) // (1024 * 1024),
                        pci_bus_id=_text(pci.busId),
                    )
                )
            return NvmlSnapshot(driver, cuda, tuple(gpus))
        except pynvml.NVMLError as e:
            raise NvmlUnavailable(str(e) or type(e).__name__) from e
        finally:
            with contextlib.suppress(pynvml.NVMLError):
                pynvml.nvmlShutdown()

    def nvml_device_details(self) -> list[dict[str, Any]]:
        """Per-GPU health counters for `diag gpu`; each unreadable field is reported as such.

        Consumer cards and MIG slices lack many counters (NVML answers NotSupported), so one
        missing field must not hide the others.
        """
        import pynvml

        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as e:
            raise NvmlUnavailable(str(e) or type(e).__name__) from e

        def field_of(fn: Any, *args: Any) -> Any:
            try:
                return fn(*args)
            except pynvml.NVMLError as e:
                return {"unavailable": str(e) or type(e).__name__}

        try:
            out: list[dict[str, Any]] = []
            for i in range(pynvml.nvmlDeviceGetCount()):
                h = pynvml.nvmlDeviceGetHandleByIndex(i)
                temp_gpu = pynvml.NVML_TEMPERATURE_GPU
                out.append(
                    {
                        "index": i,
                        "name": field_of(lambda h=h: _text(pynvml.nvmlDeviceGetName(h))),
                        "uuid": field_of(lambda h=h: _text(pynvml.nvmlDeviceGetUUID(h))),
                        "persistence_mode": field_of(pynvml.nvmlDeviceGetPersistenceMode, h),
                        "temperature_c": field_of(pynvml.nvmlDeviceGetTemperature, h, temp_gpu),
                        "power_mw": field_of(pynvml.nvmlDeviceGetPowerUsage, h),
                        "power_limit_mw": field_of(pynvml.nvmlDeviceGetEnforcedPowerLimit, h),
                        "clock_sm_mhz": field_of(
                            pynvml.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_SM
                        ),
                        "clock_mem_mhz": field_of(
                            pynvml.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_MEM
                        ),
                        "pcie_gen": field_of(pynvml.nvmlDeviceGetCurrPcieLinkGeneration, h),
                        "pcie_width": field_of(pynvml.nvmlDeviceGetCurrPcieLinkWidth, h),
                        "pcie_gen_max": field_of(pynvml.nvmlDeviceGetMaxPcieLinkGeneration, h),
                        "pcie_width_max": field_of(pynvml.nvmlDeviceGetMaxPcieLinkWidth, h),
                        "ecc_uncorrected_volatile": field_of(
                            pynvml.nvmlDeviceGetTotalEccErrors,
                            h,
                            pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                            pynvml.NVML_VOLATILE_ECC,
                        ),
                        "ecc_corrected_volatile": field_of(
                            pynvml.nvmlDeviceGetTotalEccErrors,
                            h,
                            pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED,
                            pynvml.NVML_VOLATILE_ECC,
                        ),
                        "retired_pages_pending": field_of(
                            pynvml.nvmlDeviceGetRetiredPagesPendingStatus, h
                        ),
                        "remapped_rows": field_of(pynvml.nvmlDeviceGetRemappedRows, h),
                    }
                )
            return out
        finally:
            with contextlib.suppress(pynvml.NVMLError):
                pynvml.nvmlShutdown()

    def nvml_samples(self) -> list[GpuSample]:
        """Utilization, memory, temperature, power and ECC counters of every GPU, right now.

        What the node daemon serves on /v1/gpus and /metrics. Each reading NVML refuses is
        None with the reason in ``unreadable``; only a missing library or driver raises
        NvmlUnavailable.
        """
        import pynvml

        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as e:
            raise NvmlUnavailable(str(e) or type(e).__name__) from e
        try:
            return [_sample(pynvml, i) for i in range(pynvml.nvmlDeviceGetCount())]
        except pynvml.NVMLError as e:
            raise NvmlUnavailable(str(e) or type(e).__name__) from e
        finally:
            with contextlib.suppress(pynvml.NVMLError):
                pynvml.nvmlShutdown()

    def nvml_xid_events(
        self, running: Callable[[], bool], poll_ms: int = 1000
    ) -> Iterator[XidEvent]:
        """XID errors as NVML reports them, until ``running()`` turns false.

        NVML has no "last XID" reading: XIDs arrive only as events on an event set, so a
        caller that wants them must listen. GPUs that cannot report them (NotSupported) are
        left out; with none left the iterator ends at once.
        """
        import pynvml

        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as e:
            raise NvmlUnavailable(str(e) or type(e).__name__) from e
        events = None
        try:
            events = pynvml.nvmlEventSetCreate()
            listening = 0
            for i in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(i)
                with contextlib.suppress(pynvml.NVMLError):
                    pynvml.nvmlDeviceRegisterEvents(
                        handle, pynvml.nvmlEventTypeXidCriticalError, events
                    )
                    listening += 1
            while listening and running():
                try:
                    data = pynvml.nvmlEventSetWait(events, poll_ms)
                except pynvml.NVMLError as e:
                    if getattr(e, "value", None) == pynvml.NVML_ERROR_TIMEOUT:
                        continue
                    raise NvmlUnavailable(str(e) or type(e).__name__) from e
                yield XidEvent(
                    index=int(pynvml.nvmlDeviceGetIndex(data.device)),
                    uuid=_text(pynvml.nvmlDeviceGetUUID(data.device)),
                    xid=int(data.eventData),
                )
        except pynvml.NVMLError as e:
            raise NvmlUnavailable(str(e) or type(e).__name__) from e
        finally:
            with contextlib.suppress(pynvml.NVMLError):
                if events is not None:
                    pynvml.nvmlEventSetFree(events)
                pynvml.nvmlShutdown()


def _sample(pynvml: Any, index: int) -> GpuSample:
    """One GPU's readings; a reading NVML refuses is None and its reason is kept."""
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    unreadable: dict[str, str] = {}

    def read(name: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except pynvml.NVMLError as e:
            unreadable[name] = str(e) or type(e).__name__
            return None

    util = read("utilization", lambda: pynvml.nvmlDeviceGetUtilizationRates(handle))
    memory = read("memory", lambda: pynvml.nvmlDeviceGetMemoryInfo(handle))
    power_mw = read("power", lambda: pynvml.nvmlDeviceGetPowerUsage(handle))

    def ecc_errors(kind: int) -> Any:
        return pynvml.nvmlDeviceGetTotalEccErrors(handle, kind, pynvml.NVML_VOLATILE_ECC)

    ecc = {
        "sbe": read("ecc_sbe", lambda: ecc_errors(pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED)),
        "dbe": read("ecc_dbe", lambda: ecc_errors(pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED)),
    }
    pci = read("pci", lambda: pynvml.nvmlDeviceGetPciInfo(handle))
    temperature = read(
        "temperature",
        lambda: pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU),
    )
    return GpuSample(
        index=index,
        uuid=_text(read("uuid", lambda: pynvml.nvmlDeviceGetUUID(handle)) or ""),
        name=_text(read("name", lambda: pynvml.nvmlDeviceGetName(handle)) or ""),
        pci_bus_id=_text(pci.busId) if pci is not None else "",
        utilization_gpu_pct=None if util is None else int(util.gpu),
        utilization_memory_pct=None if util is None else int(util.memory),
        memory_used_mib=None if memory is None else int(memory.used) // (1024 * 1024),
        memory_total_mib=None if memory is None else int(memory.total) // (1024 * 1024),
        temperature_c=None if temperature is None else int(temperature),
        power_w=None if power_mw is None else int(power_mw) / 1000.0,
        ecc_sbe_volatile=None if ecc["sbe"] is None else int(ecc["sbe"]),
        ecc_dbe_volatile=None if ecc["dbe"] is None else int(ecc["dbe"]),
        unreadable=unreadable,
    )
