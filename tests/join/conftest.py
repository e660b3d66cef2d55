"""A fake provider host for join: a temporary root, stateful fake tools, real files.

The root starts as a fresh Ubuntu 22.04 host looks to join: no modules loaded, forwarding
off, one swap file active and in /etc/fstab (tab-separated, as installers write it), a dpkg
status with a few base packages, systemd's unit directories, apt's keyring and sources
directories, /var/run a link to /run, and nothing on the PATH but the fakes: the base tools
with curl and gpg, and a tool more whenever the fake apt-get installs its package. Every join
test shares this one world, so a package of a third-party repository (kubeadm from
pkgs.k8s.io) installs only once that repository is configured, as on a real host
(:func:`install_kube_packages` for a test whose host had it before join). ``snapshot``
hashes every file, link and directory under the root except the kernel's and systemd's
runtime state (/proc, /sys, /run) and join's own journal, so "reset restores the host byte
for byte" is one comparison.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import fakes_gpu, fakesystem
from tests.support.nvml import nvml_t4  # noqa: F401  (the node steps' tests detect a T4)
from worldland_cli.host import Host
from worldland_cli.join.journal import Journal

FSTAB = (
    "# /etc/fstab: static file system information.\n"
    "UUID=0a3407de-014b-458b-b5c1-848e92a327a3 /  ext4  errors=remount-ro 0 1\n"
    "/swap.img\tnone\tswap\tsw\t0\t0\n"
)
# The kernel's state and systemd's runtime state are not files join restores.
KERNEL_STATE = ("proc", "sys", "run")
DPKG_STATUS = (
    "Package: base-files\nStatus: install ok installed\nArchitecture: amd64\n"
    "Version: 12.4+deb12u5\n\n"
    "Package: openssh-server\nStatus: install ok installed\nArchitecture: amd64\n"
    "Version: 1:9.2p1-2+deb12u3\n\n"
)


@dataclass
class FakeHost:
    root: Path
    fakes: Path
    host: Host
    journal: Journal

    def calls(self) -> list[str]:
        return fakesystem.calls(self.fakes)


def fresh_root(root: Path) -> None:
    (root / "etc" / "sysctl.d").mkdir(parents=True)
    (root / "etc" / "modules-load.d").mkdir(parents=True)
    fstab = root / "etc" / "fstab"
    fstab.write_text(FSTAB)
    fstab.chmod(0o644)
    (root / "proc" / "sys" / "net" / "ipv4").mkdir(parents=True)
    (root / "proc" / "sys" / "net" / "ipv4" / "ip_forward").write_text("0\n")
    (root / "proc" / "modules").write_text("")
    (root / "proc" / "swaps").write_text(
        fakesystem.SWAPS_HEADER + "/swap.img\tfile\t\t2097148\t\t0\t\t-2\n"
    )
    (root / "var" / "lib" / "dpkg" / "info").mkdir(parents=True)
    (root / "var" / "lib" / "dpkg" / "status").write_text(DPKG_STATUS)
    (root / "lib" / "systemd" / "system").mkdir(parents=True)
    (root / "etc" / "systemd" / "system" / "multi-user.target.wants").mkdir(parents=True)


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHost]:
    root = tmp_path / "root"
    fresh_root(root)
    fakes = fakesystem.install(tmp_path / "fakes")
    fakes_gpu.ubuntu_base(root, fakes)
    # Only the fakes: a tool is on the PATH once the fake apt-get has installed it.
    search = str(fakes)
    env = {**os.environ, fakesystem.ROOT_ENV: str(root)}
    monkeypatch.setenv(fakesystem.ROOT_ENV, str(root))
    monkeypatch.setenv("PATH", search)
    host = Host(root, search_path=search, env=env, default_timeout=30.0)
    yield FakeHost(root, fakes, host, Journal(host))


def install_kube_packages(fake: FakeHost, *names: str) -> None:
    """Install ``names`` from pkgs.k8s.io the way a person following Kubernetes' install guide
    does before join: the repository configured, ``apt-get update``, ``apt-get install``."""
    fakes_gpu.kube_repository(fake.root)
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", *names]):
        done = fake.host.run(argv)
        assert done.ok, done.stderr


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path under root (but the kernel's and the journal) with its kind, mode, owner
    and content hash or link target."""
    state: dict[str, tuple[object, ...]] = {}
    for directory, dirs, files in os.walk(root):
        rel_dir = Path(directory).relative_to(root)
        dirs[:] = [
            d for d in dirs
            if not (rel_dir == Path(".") and d in KERNEL_STATE)
            and (rel_dir / d).as_posix() != "var/lib/worldland"
        ]  # fmt: skip
        for name in dirs + files:
            path = Path(directory) / name
            st = path.lstat()
            rel = (rel_dir / name).as_posix()
            if path.is_symlink():
                state[rel] = ("link", os.readlink(path), st.st_uid, st.st_gid)
            elif path.is_dir():
                state[rel] = ("dir", st.st_mode, st.st_uid, st.st_gid)
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                state[rel] = ("file", st.st_mode, st.st_uid, st.st_gid, digest)
    return state


# The node steps' hubs (real, with stub join flags) and their fake cluster.
from tests.join.nodehub import cluster, http_hub, node_hub, tls_hub  # noqa: E402, F401
