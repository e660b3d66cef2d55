"""What the whole-process transfer benchmarks share (bench/transfer.py, bench/transfer_tree.py).

Each case is one command a user types, timed as a whole process from a clean destination:
the destination is cleared (and the page cache's dirty pages written back) before each run,
outside the timing, and the result is checked after it, also outside the timing.

Three CPU figures per run: the client's (getrusage of the processes the bench started and
reaped), both ends' (that plus what the sshd listener has reaped: every session process and
what it ran, sftp-server, rsync --server, worldland's helper), and the whole machine's (busy
time from /proc/stat across the command, less the bench's own process). Only the last sees
work done outside those processes (the kernel's writeback, other users of a shared machine).

A far-side process that outlives its sshd session (worldland's helper, which tidies up and
hashes its last range after the channel closed; one of sshd's own) is counted too: the bench
is the child subreaper of everything under it (``PR_SET_CHILD_SUBREAPER``), so such an
orphan becomes its child, and it is waited for and counted with the far side's figure.
Without that it went to init and no figure but the machine's saw it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.sshd import SshdServer, account_home

REPO = Path(__file__).resolve().parent.parent
WORLDLAND = str(REPO / ".venv" / "bin" / "worldland")
BASHRC = {"plain": "", "sleep": "sleep 0.2\n"}  # "pyenv": this machine's own root account
TOOLS = ("ssh", "sftp", "scp", "rsync")


def account_config(name: str, work: Path) -> list[str]:
    """sshd_config lines for an account: its own HOME with this ~/.bashrc (see BASHRC).

    ``pyenv`` is this machine's own root account and its ~/.bashrc, where that runs
    `pyenv init`.
    """
    if name == "pyenv":
        return []
    if name not in BASHRC:
        sys.exit(f"unknown account {name!r}: one of {', '.join([*BASHRC, 'pyenv'])}")
    return account_home(work / f"home-{name}", BASHRC[name])


def client_cpu() -> float:
    """CPU seconds of every process this bench started and reaped (the client side)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu() -> float:
    """CPU seconds of the bench's own process (the WAN relay's threads live here)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (0.0 where /proc is missing)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def reaped_cpu(pid: int) -> float:
    """CPU seconds of the children process ``pid`` has waited for (cutime + cstime)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # from field 3 (state) on
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def settle(server: SshdServer, timeout: float = 10.0) -> float:
    """Wait until the sshd has reaped every session (its CPU then counts in reaped_cpu), and
    until every process that outlived its session has ended; the CPU seconds of those."""
    deadline = time.monotonic() + timeout
    while server.session_pids() and time.monotonic() < deadline:
        time.sleep(0.01)
    orphaned = 0.0
    while (left := _orphans(server)) and time.monotonic() < deadline:
        for pid in left:
            done, _status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                orphaned += usage.ru_utime + usage.ru_stime
        time.sleep(0.005)
    return orphaned


_PR_SET_CHILD_SUBREAPER = 36  # prctl(2)


def adopt_orphans() -> None:
    """Make this process the child subreaper of everything under it (Linux; a no-op
    elsewhere): a far-side process whose session ended before it becomes ours to count."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _orphans(server: SshdServer) -> list[int]:
    """Our children other than the sshd listener: processes that outlived their session."""
    me, mine = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == server.process.pid:
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me:  # field 4, the parent
            mine.append(int(entry))
    return mine


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def openssh_version() -> str:
    """What `ssh -V` says (it writes to stderr)."""
    done = subprocess.run(["ssh", "-V"], capture_output=True, text=True, check=False)
    return (done.stderr or done.stdout).strip()


def require_tools() -> None:
    """Exit with a clear message when a peer the bench compares with is not installed."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        sys.exit(
            f"{', '.join(missing)} not installed: the bench compares worldland with them "
            "(apt-get install -y openssh-client rsync)"
        )
    if not os.access(WORLDLAND, os.X_OK):
        sys.exit(f"{WORLDLAND} not found: install the project into .venv first")


def compile_bytecode() -> None:
    """Compile the package's modules, as `pip install` does for a user's copy.

    An editable checkout run with PYTHONDONTWRITEBYTECODE set (CI and this sandbox set it)
    has no .pyc of its own modules, so every `worldland` would compile them again at start-up
    (30-40 ms here), which no installed copy does. Outside the timing.
    """
    package = REPO / "src" / "worldland_cli"
    python = str(Path(WORLDLAND).with_name("python"))
    subprocess.run([python, "-m", "compileall", "-q", str(package)], check=True)


def make_file(path: Path, size: int) -> None:
    """``size`` random bytes (incompressible), written in 1 MiB steps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        left = size
        while left:
            step = min(left, 1 << 20)
            f.write(os.urandom(step))
            left -= step


def make_tree(top: Path, files: int, size: int) -> None:
    top.mkdir(parents=True)
    for i in range(files):
        (top / f"f{i:05d}.bin").write_bytes(os.urandom(size))


@dataclass(frozen=True)
class Endpoint:
    """Where every tool reaches the sshd: loopback directly, or the port of a WAN relay.

    ``known_hosts`` names the sshd's host key under this host and port, so host-key checking
    stays on for every tool.
    """

    host: str
    port: int
    user: str
    client_key: Path
    known_hosts: Path

    @classmethod
    def direct(cls, server: SshdServer) -> Endpoint:
        return cls(server.host, server.port, server.user, server.client_key, server.known_hosts)

    @classmethod
    def relayed(cls, server: SshdServer, port: int, known_hosts: Path) -> Endpoint:
        """The sshd behind a relay on 127.0.0.1:``port``; writes ``known_hosts`` for it."""
        known_hosts.write_text(f"[127.0.0.1]:{port} {server.host_public_key}\n")
        return cls("127.0.0.1", port, server.user, server.client_key, known_hosts)

    @property
    def login(self) -> str:
        return f"{self.user}@{self.host}"

    def url(self, path: Path) -> str:
        """An ssh:// URL for an absolute path, as `worldland send/receive` take it."""
        return f"ssh://{self.login}:{self.port}{path}"

    def ssh_options(self) -> list[str]:
        return [
            *("-F", "none", "-i", str(self.client_key)),
            *("-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "BatchMode=yes"),
        ]

    def worldland(self, command: str, *args: str) -> list[str]:
        auth = ["--identity", str(self.client_key), "--known-hosts", str(self.known_hosts)]
        return [WORLDLAND, command, *args, *auth]

    def sftp(self, *flags: str) -> list[str]:
        """`sftp -b -`: the batch (put/get) comes on stdin."""
        return [
            *("sftp", "-q", *flags, *self.ssh_options()),
            *("-P", str(self.port), "-b", "-", self.login),
        ]

    def scp(self, *flags: str) -> list[str]:
        return ["scp", "-q", *flags, *self.ssh_options(), "-P", str(self.port)]

    def rsync(self) -> list[str]:
        ssh = " ".join(["ssh", *self.ssh_options(), "-p", str(self.port)])
        return ["rsync", "-a", "-e", ssh]


def run(argv: list[str], batch: str | None = None) -> None:
    """Run one command to the end; a failure stops the bench with its stderr."""
    done = subprocess.run(
        argv,
        input=batch,
        text=True,
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"exit status {done.returncode}: {' '.join(argv)}\n{done.stderr[-2000:]}"
        )


def clearer(where: Path) -> Callable[[], None]:
    """Empties ``where`` (what the previous run wrote)."""

    def clear() -> None:
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir(parents=True)

    return clear


def _nothing() -> None:
    pass


@dataclass
class Case:
    """One command, the destination it fills, and a check of what it left there."""

    name: str  # "send    worldland": the direction, then the tool
    action: Callable[[], None]
    clear: Callable[[], None]
    check: Callable[[], None] = _nothing

    @property
    def way(self) -> str:
        return self.name.split(None, 1)[0]

    @property
    def tool(self) -> str:
        return self.name.split(None, 1)[1]


def tool_cases(
    end: Endpoint,
    moved: Path,
    pod: Path,
    into: tuple[Path, Path],
    landed: Callable[[Path], Callable[[], None]],
    tree: bool = False,
    sftp_flags: tuple[str, ...] = (),
) -> list[Case]:
    """Every tool moving ``moved`` (here) into ``into[0]`` on the far side (a send) and
    ``pod`` (there) into ``into[1]`` here (a receive); with ``tree``, directories copied
    recursively. ``landed(where)`` checks what arrived in ``where``; ``sftp_flags`` go to
    sftp."""
    remote, local = into
    r = " -r" if tree else ""
    sftp, scp, rsync = end.sftp(*sftp_flags), end.scp(*r.split()), end.rsync()
    at = f"{end.login}:"

    def case(name: str, action: Callable[[], None], where: Path) -> Case:
        return Case(name, action, clearer(where), landed(where))

    return [
        case(
            "send    worldland",
            lambda: run(end.worldland("send", str(moved), end.url(remote))),
            remote,
        ),
        case("send    sftp -b", lambda: run(sftp, f"put{r} {moved} {remote}/\n"), remote),
        case(f"send    scp{r}", lambda: run([*scp, str(moved), f"{at}{remote}/"]), remote),
        case("send    rsync", lambda: run([*rsync, str(moved), f"{at}{remote}/"]), remote),
        case(
            "receive worldland",
            lambda: run(end.worldland("receive", end.url(pod), str(local))),
            local,
        ),
        case("receive sftp -b", lambda: run(sftp, f"get{r} {pod} {local}/\n"), local),
        case(f"receive scp{r}", lambda: run([*scp, f"{at}{pod}", f"{local}/"]), local),
        case("receive rsync", lambda: run([*rsync, f"{at}{pod}", f"{local}/"]), local),
    ]


@dataclass
class Sample:
    wall: float  # seconds
    client: float  # CPU seconds of the processes the bench started
    ends: float  # the client's CPU seconds and the sshd side's
    machine: float  # CPU seconds of the whole machine, less the bench's own process


@dataclass
class Samples:
    walls: list[float] = field(default_factory=list)
    clients: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)
    machines: list[float] = field(default_factory=list)

    def add(self, sample: Sample) -> None:
        self.walls.append(sample.wall)
        self.clients.append(sample.client)
        self.ends.append(sample.ends)
        self.machines.append(sample.machine)

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    def spread(self) -> str:
        """The median and the range of the rounds: 1.23 s [1.10-1.40]."""
        return f"{self.median:6.2f} s [{min(self.walls):.2f}-{max(self.walls):.2f}]"


def timed(case: Case, server: SshdServer) -> Sample:
    """One run of ``case`` from a clean destination, then a check of its result."""
    case.clear()
    os.sync()  # the previous run's writeback must not land in this run's time
    settle(server)
    client, own, busy = client_cpu(), own_cpu(), busy_seconds()
    far = reaped_cpu(server.process.pid)
    began = time.perf_counter()
    case.action()
    wall = time.perf_counter() - began
    machine = busy_seconds() - busy - (own_cpu() - own)
    client = client_cpu() - client
    orphaned = settle(server)
    far = reaped_cpu(server.process.pid) - far + orphaned
    case.check()
    return Sample(wall, client, client + far, max(machine, 0.0))


def measure(cases: list[Case], rounds: int, server: SshdServer) -> dict[str, Samples]:
    """Every case in turn, ``rounds`` times; each destination is cleared after its last run."""
    adopt_orphans()
    figures = {case.name: Samples() for case in cases}
    for _ in range(rounds):
        for case in cases:
            figures[case.name].add(timed(case, server))
    for case in cases:
        case.clear()
    return figures


def machine_line() -> str:
    return f"{os.cpu_count()} x {cpu_name()}"
