"""Third-party apt repositories as join adds them: a key fetched with curl, dearmored with gpg,
a list that names it, ``apt-get update``, then the packages only that repository offers.

There is no network here, so the repositories live in this module: :func:`add_repository`
registers one (its URL as a sources list names it, the armored key its Release file is
signed with, the packages it offers) and :data:`KEY_URLS` what ``curl`` serves. The fakes
check what the real tools check:

- ``curl -fsSL --create-dirs -o PATH URL`` writes the key for a known URL; any other path
  on a known host is a 404 (``curl: (22)``), any other host does not resolve (``curl: (6)``).
- ``gpg --batch --yes --dearmor -o OUT IN`` is the real gpg when this machine has one (paths
  moved under the fake root), else the same bytes computed here (:func:`dearmor`).
- ``apt-get update`` reads /etc/apt/sources.list.d: a repository it does not know has no
  Release file; one whose ``signed-by`` keyring is not its key, dearmored, is "not signed"
  (NO_PUBKEY); a mirror broken with :func:`break_mirror` fails with a Hash Sum mismatch.
  Each of those exits 100, as apt does. What an update fetched is remembered beside the fakes
  (apt's lists, which are not part of the host join restores).
- ``apt-get install`` of a package only a repository offers needs that repository configured
  and fetched ("E: Unable to locate package" otherwise), and installs its version of it.

Every other ``apt-get`` call goes to the base fake in :mod:`tests.support.fakesystem`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tests.support import fakesystem
from tests.support.fakesystem import Package, Unexpected

KEYS = Path(__file__).parent / "keys"
REAL_GPG = "/usr/bin/gpg"
FETCHED = "apt-fetched.json"  # beside the fakes: the repositories the last updates fetched
BROKEN = "apt-broken-mirrors"  # beside the fakes: one repository URL per line
_SOURCE = re.compile(r"^deb\s+(?:\[(?P<options>[^\]]*)\]\s+)?(?P<url>\S+)\s+(?P<suite>\S+)")


@dataclass(frozen=True)
class Repository:
    """One apt repository: ``url`` as a sources list names it ($(ARCH) expanded, no trailing
    slash), ``suite`` "/" for a flat one, the armored key that signs it, its packages."""

    url: str
    suite: str
    key: bytes
    key_id: str
    packages: Mapping[str, Package] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return _label(self.url, self.suite)


def _label(url: str, suite: str) -> str:
    """How apt names a source in messages ("URL  InRelease" for a flat repository)."""
    return f"{url}  " if suite == "/" else f"{url} {suite} "


REPOSITORIES: dict[str, Repository] = {}
KEY_URLS: dict[str, bytes] = {}


def add_repository(repository: Repository) -> None:
    REPOSITORIES[repository.url] = repository
    for name, package in repository.packages.items():
        # Known from the start, so purge (which reads only the table) finds its commands.
        fakesystem.PACKAGES.setdefault(name, package)


def key(name: str) -> bytes:
    """A stand-in repository key from tests/support/keys (armored, as the real URLs serve)."""
    return (KEYS / name).read_bytes()


def dearmor(armored: bytes) -> bytes:
    """What ``gpg --dearmor`` writes: the base64 body of the armor, without its checksum."""
    lines = armored.decode().splitlines()
    start = lines.index("-----BEGIN PGP PUBLIC KEY BLOCK-----") + 1
    while lines[start].strip():  # armor headers ("Comment: ...") end at a blank line
        start += 1
    body = []
    for line in lines[start + 1 :]:
        if line.startswith(("=", "-----END")):
            break
        body.append(line.strip())
    return base64.b64decode("".join(body))


def break_mirror(fakes: Path, url: str) -> None:
    """From now on the mirror of ``url`` serves an index that does not match its Release."""
    with (fakes / BROKEN).open("a") as f:
        f.write(url.rstrip("/") + "\n")


# ------------------------------------------------------------------------------ curl, gpg


def _curl(root: Path, args: list[str]) -> int:
    if len(args) != 5 or args[:3] != ["-fsSL", "--create-dirs", "-o"]:
        raise Unexpected
    target, url = root / args[3].lstrip("/"), args[4]
    body = KEY_URLS.get(url)
    if body is None:
        host = urlsplit(url).hostname or url
        if not any(urlsplit(known).hostname == host for known in KEY_URLS):
            print(f"curl: (6) Could not resolve host: {host}", file=sys.stderr)
            return 6
        print("curl: (22) The requested URL returned error: 404", file=sys.stderr)
        return 22
    target.parent.mkdir(mode=0o750, parents=True, exist_ok=True)  # --create-dirs: 0750
    target.write_bytes(body)
    return 0


def _gpg(root: Path, args: list[str]) -> int:
    if len(args) != 6 or args[:4] != ["--batch", "--yes", "--dearmor", "-o"]:
        raise Unexpected
    out, source = root / args[4].lstrip("/"), root / args[5].lstrip("/")
    if Path(REAL_GPG).exists():
        return subprocess.call([REAL_GPG, *args[:4], str(out), str(source)])
    if not source.exists():
        print(f"gpg: can't open '{args[5]}': No such file or directory", file=sys.stderr)
        print("gpg: dearmoring failed: No such file or directory", file=sys.stderr)
        return 2
    if not out.parent.is_dir():
        print(f"gpg: can't create '{args[4]}': No such file or directory", file=sys.stderr)
        print("gpg: dearmoring failed: No such file or directory", file=sys.stderr)
        return 2
    out.write_bytes(dearmor(source.read_bytes()))
    return 0


# ------------------------------------------------------------------------------ apt-get


def _sources(root: Path) -> list[tuple[str, str, str | None]]:
    """(url, suite, signed-by keyring) of every ``deb`` line in /etc/apt/sources.list.d."""
    found = []
    for listing in sorted((root / "etc/apt/sources.list.d").glob("*.list")):
        for line in listing.read_text().splitlines():
            match = _SOURCE.match(line.strip())
            if match is None:
                continue
            options = dict(o.split("=", 1) for o in (match["options"] or "").split() if "=" in o)
            url = match["url"].replace("$(ARCH)", "amd64").rstrip("/")
            found.append((url, match["suite"], options.get("signed-by")))
    return found


def _fetched(fakes: Path) -> set[str]:
    path = fakes / FETCHED
    return set(json.loads(path.read_text())) if path.exists() else set()


def _update_errors(root: Path, fakes: Path, url: str, suite: str, keyring: str | None) -> list[str]:
    """apt's W:/E: lines for one source, none when it updates cleanly."""
    repository = REPOSITORIES.get(url)
    if repository is None:
        return [
            f"E: The repository '{_label(url, suite)}Release' does not have a Release file.",
            "N: Updating from such a repository can't be done securely, and is therefore "
            "disabled by default.",
        ]
    path = root / keyring.lstrip("/") if keyring else None
    held = path.read_bytes() if path is not None and path.is_file() else None
    if held != dearmor(repository.key):
        return [
            f"W: GPG error: {repository.label}InRelease: The following signatures couldn't be "
            "verified because the public key is not available: NO_PUBKEY " + repository.key_id,
            f"E: The repository '{repository.label}InRelease' is not signed.",
        ]
    broken = (fakes / BROKEN).read_text().split() if (fakes / BROKEN).exists() else []
    if url in broken:
        return [
            f"E: Failed to fetch {url}/Packages.gz  Hash Sum mismatch",
            "   Hashes of expected file:",
            "    - Filesize:14210 [weak]",
            "    - SHA256:9d13fe11e5f7e3702340af99a648dd36156007445033a7af79c48f02fb752fc4",
            "   Hashes of received file:",
            "    - SHA256:3f43987aaf0c017633ab386697cb148e014abdf3f49a2d71b66db0cae1a243fa",
            "    - Filesize:14210 [weak]",
            "   Last modification reported: Thu, 14 Mar 2024 00:05:57 +0000",
            "   Release file created at: Thu, 14 Mar 2024 00:05:57 +0000",
            "E: Some index files failed to download. They have been ignored, or old ones used "
            "instead.",
        ]
    return []


def _update(root: Path, fakes: Path, quiet: bool) -> int:
    errors: list[str] = []
    fetched = _fetched(fakes)
    for number, (url, suite, keyring) in enumerate(_sources(root), 1):
        problems = _update_errors(root, fakes, url, suite, keyring)
        if not quiet:
            print(f"{'Err' if problems else 'Get'}:{number} {_label(url, suite)}InRelease")
        if problems:
            errors += problems
        else:
            fetched.add(url)
    (fakes / FETCHED).write_text(json.dumps(sorted(fetched)))
    if not quiet:
        print("Reading package lists...")
    for line in errors:
        print(line, file=sys.stderr)
    return 100 if any(line.startswith("E:") for line in errors) else 0


def _choose_versions(root: Path, fakes: Path, names: list[str]) -> int | None:
    """Choose each repository package's version from the fetched sources; an exit status
    when one cannot be found (None: the base fake installs them)."""
    configured = {url for url, _, _ in _sources(root)} & _fetched(fakes)
    offered = {name for repo in REPOSITORIES.values() for name in repo.packages}
    for name in names:
        found = [REPOSITORIES[u].packages[name] for u in sorted(configured)
                 if u in REPOSITORIES and name in REPOSITORIES[u].packages]  # fmt: skip
        if found:
            fakesystem.add_package(name, found[-1])
        elif name in offered:
            print(f"E: Unable to locate package {name}", file=sys.stderr)
            return 100
    return None


_base_apt_get = fakesystem.TOOLS["apt-get"]


def _apt_get(root: Path, args: list[str]) -> int:
    fakes = Path(os.environ["WORLDLAND_FAKE_LOG"])
    if args in (["update"], ["update", "-qq"]):
        return _update(root, fakes, quiet=args == ["update", "-qq"])
    if args[:1] == ["install"]:
        status = _choose_versions(root, fakes, [a for a in args[1:] if not a.startswith("-")])
        if status is not None:
            return status
    return _base_apt_get(root, args)


fakesystem.TOOLS.update({"curl": _curl, "gpg": _gpg, "apt-get": _apt_get})
