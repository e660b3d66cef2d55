"""The asyncssh connection: opened the safe way, and asking the far side for a file's sha256.

asyncssh plans, checks and renames every transfer, and carries the bytes of small files
(docs/transfer.md, "Engine"). Host keys are never accepted on first sight: they come from
known_hosts, as OpenSSH does, or are pinned by the hub for pods. An identity file is checked
as a wallet key file is (:func:`.auth.wallet.check_private_file`: mode and owner, like ssh).
Connection problems are turned into the domain errors whose exit codes scripts rely on.

(Named for what it opens; ``auth/session.py`` is a person's login session at the hub.)
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import asyncssh

from worldland_cli.auth.wallet import WalletError, check_private_file
from worldland_cli.host import Host
from worldland_cli.transfer.display import shown
from worldland_cli.transfer.errors import (
    DeniedError,
    HostKeyError,
    TransferError,
    UnreachableError,
)
from worldland_cli.transfer.pipeline import MAX_BLOCK
from worldland_cli.transfer.targets import SshLocation

CONNECT_TIMEOUT = 15.0
KEEPALIVE_INTERVAL = 10.0  # a silently dead link is noticed in ~30 s instead of hanging
HASH_BLOCK = 1 << 20
# What we advertise for data the server sends us. asyncssh's defaults (2 MiB window, 32 KiB
# packets) make a download ~8 packets per 255 KiB SFTP read, and per-packet Python work is what
# bounds the rate; 256 KiB packets and a 16 MiB window cut client and sshd CPU per GiB
# (receive 105-143 -> 150-266 MB/s side by side under the same load, docs/transfer.md).
WINDOW = 16 << 20
MAX_PACKET = 256 << 10

# AES-GCM first: with AES-NI it is the cheapest authenticated cipher for both ends, and on a
# CPU-bound link that is the transfer rate (docs/transfer.md). The rest keep asyncssh's order.
_PREFERRED_CIPHERS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]

_HEX64 = re.compile(r"\b([0-9a-f]{64})\b")

# Runs on the far side: the fastest sha256 the machine has (python3 and openssl use OpenSSL,
# about 3x coreutils sha256sum), hashing at most N bytes so a prefix can be checked too.
_REMOTE_HASH = r"""p=$1; n=$2
if command -v python3 >/dev/null 2>&1; then
exec python3 -c 'import hashlib,sys
h=hashlib.sha256(); n=int(sys.argv[2])
with open(sys.argv[1],"rb") as f:
    while n>0:
        b=f.read(min(n,1<<20))
        if not b: break
        h.update(b); n-=len(b)
print(h.hexdigest())' "$p" "$n"
fi
test -r "$p" || { echo "cannot read $p" >&2; exit 2; }
if command -v openssl >/dev/null 2>&1; then head -c "$n" "$p" | openssl dgst -sha256 -r; exit; fi
head -c "$n" "$p" | sha256sum
"""


def preferred_ciphers() -> list[str]:
    from asyncssh.encryption import get_default_encryption_algs

    rest = [a.decode() for a in get_default_encryption_algs()]
    return _PREFERRED_CIPHERS + [a for a in rest if a not in _PREFERRED_CIPHERS]


@dataclass(frozen=True)
class Credentials:
    """How we prove who we are, and which host keys we trust when there is no pinned key."""

    identity: Path | None = None
    identity_explicit: bool = False
    known_hosts: Path = field(default_factory=lambda: Path.home() / ".ssh" / "known_hosts")
    use_agent: bool = True


def _load_identity(creds: Credentials) -> list[Any]:
    """The key file's key, read through Host once its mode and owner are checked."""
    path = creds.identity
    host = Host()
    data = None if path is None else host.read_bytes(str(path.absolute()))
    if path is None or data is None:
        if creds.identity_explicit:
            raise DeniedError(f"identity file {path} does not exist", "pass --identity KEY_FILE")
        return []
    try:
        check_private_file(host, str(path.absolute()), "identity file")
    except WalletError as e:
        raise DeniedError(e.message, e.hint) from None
    try:
        return [asyncssh.import_private_key(data)]
    except asyncssh.KeyImportError as e:
        if "passphrase" in str(e).lower():
            raise DeniedError(
                f"identity file {path} is protected by a passphrase",
                f"load it into your agent first: ssh-add {path}",
            ) from e
        raise DeniedError(f"cannot read identity file {path}: {e}") from e


def _trusted_keys(loc: SshLocation, creds: Credentials) -> Any:
    if loc.host_key is not None:
        try:
            key = asyncssh.import_public_key(loc.host_key)
        except (asyncssh.KeyImportError, ValueError) as e:
            raise HostKeyError(f"the pinned host key for {loc.host} is not a valid key") from e
        return ([key], [], [])
    text = Host().read_bytes(str(creds.known_hosts.absolute()))
    if text is None:
        raise HostKeyError(
            f"no known_hosts file at {creds.known_hosts}, so {loc.host}'s key cannot be checked",
            f"verify the key out of band, then: ssh-keyscan -p {loc.port} {loc.host} "
            f">> {creds.known_hosts}  (or pass --known-hosts FILE)",
        )
    return text


def trusted_host_keys(loc: SshLocation, creds: Credentials) -> list[str]:
    """The host keys (``"ssh-ed25519 AAAA..."`` each) :func:`connect` trusts for ``loc``,
    known before it connects: the hub's pin, or the known_hosts entries for the host's name
    (not revoked; certificates and IP-only entries are not listed).

    Empty where there are none, or the file cannot be read: :func:`connect` then says why.
    """
    try:
        trusted = _trusted_keys(loc, creds)
    except HostKeyError:
        return []
    keys: Sequence[asyncssh.SSHKey] = trusted[0] if isinstance(trusted, tuple) else []
    revoked: Sequence[asyncssh.SSHKey] = []
    if not isinstance(trusted, tuple):
        try:
            matched = asyncssh.match_known_hosts(trusted, loc.host, loc.host, loc.port)
        except (ValueError, UnicodeDecodeError):
            return []
        keys, revoked = matched[0], matched[2]
    gone = {key.public_data for key in revoked}
    lines = (key_line(key) for key in keys if key.public_data not in gone)
    return list(dict.fromkeys(lines))  # a key listed under several names counts once


def key_line(key: asyncssh.SSHKey) -> str:
    """``key`` as known_hosts writes it after the host: ``"ssh-ed25519 AAAA..."``."""
    return " ".join(key.export_public_key("openssh").decode().split()[:2])


async def _offered_fingerprint(loc: SshLocation) -> str:
    try:
        key = await asyncio.wait_for(
            asyncssh.get_server_host_key(loc.host, loc.port, server_host_key_algs=["ssh-ed25519"]),
            CONNECT_TIMEOUT,
        )
    except (TimeoutError, OSError, asyncssh.Error):
        return "unknown"
    return str(key.get_fingerprint()) if key is not None else "unknown"


async def _host_key_error(loc: SshLocation, creds: Credentials, trusted: Any) -> HostKeyError:
    offered = await _offered_fingerprint(loc)
    where = f"[{loc.host}]:{loc.port}" if loc.port != 22 else loc.host
    if loc.host_key is not None:
        return HostKeyError(
            f"the host key of {where} ({offered}) is not the key the hub pinned for this pod",
            "someone may be intercepting the connection; do not send data; contact support",
        )
    known = asyncssh.match_known_hosts(trusted, loc.host, loc.host, loc.port)[0]
    if known:
        return HostKeyError(
            f"the host key of {where} has CHANGED (now {offered}); refusing to connect",
            f"if the change is expected, remove the old key: ssh-keygen -R '{where}' "
            f"-f {creds.known_hosts}, then add the new one after checking it",
        )
    return HostKeyError(
        f"{where} is not in {creds.known_hosts} (its host key is {offered}); "
        "refusing an unknown host",
        f"check the fingerprint out of band, then: ssh-keyscan -p {loc.port} {loc.host} "
        f">> {creds.known_hosts}",
    )


async def connect(loc: SshLocation, creds: Credentials) -> asyncssh.SSHClientConnection:
    """An authenticated connection with a verified host key, or a domain error."""
    trusted = _trusted_keys(loc, creds)
    keys = _load_identity(creds)
    agent = os.environ.get("SSH_AUTH_SOCK") if creds.use_agent else None
    if not keys and not agent:
        raise DeniedError(
            "no SSH key to log in with: no identity file and no ssh-agent",
            "pass --identity KEY_FILE, or start ssh-agent and ssh-add your key",
        )
    try:
        return await asyncssh.connect(
            loc.host,
            port=loc.port,
            username=loc.user,
            known_hosts=trusted,
            client_keys=keys or None,
            agent_path=agent,
            config=None,
            encryption_algs=preferred_ciphers(),
            compression_algs=None,
            window=WINDOW,
            max_pktsize=MAX_PACKET,
            connect_timeout=CONNECT_TIMEOUT,
            keepalive_interval=KEEPALIVE_INTERVAL,
            keepalive_count_max=3,
            password=None,
            kbdint_auth=False,
            gss_auth=False,
        )
    except asyncssh.HostKeyNotVerifiable:
        raise await _host_key_error(loc, creds, trusted) from None
    except asyncssh.PermissionDenied as e:
        raise DeniedError(
            f"{loc.user}@{loc.host}:{loc.port} refused our key ({shown(e.reason)})",
            "check --identity, or that your public key is in the pod's authorized_keys",
        ) from e
    except (TimeoutError, OSError, asyncssh.DisconnectError) as e:
        raise UnreachableError(
            f"cannot reach {loc.host}:{loc.port}: {shown(e) or type(e).__name__}",
            "check that the pod is running and the address is right",
        ) from e


async def remote_sha256(
    conn: asyncssh.SSHClientConnection,
    sftp: asyncssh.SFTPClient,
    path: str,
    length: int,
    *,
    exec_ok: bool = True,
) -> tuple[str, str]:
    """The sha256 of the first ``length`` bytes of a remote file, and how it was obtained.

    Where the far-side helper cannot run (``farside.py``): the far side hashes its own copy
    over an exec channel where a shell is allowed (one login shell per call, so only where
    ``exec_ok``: files large enough to be worth it); otherwise, and on a restricted
    (sftp-only) account, the bytes are re-read over SFTP.
    """
    result = None
    command = f"sh -c {shlex.quote(_REMOTE_HASH)} sh {shlex.quote(path)} {int(length)}"
    try:
        if exec_ok:
            result = await conn.run(command, check=False, timeout=None)
    except asyncssh.ChannelOpenError:
        result = None
    if result is not None and result.exit_status == 0:
        found = _HEX64.search(str(result.stdout))
        if found:
            return found.group(1), "remote-exec"
    return await reread_sha256(sftp, path, length), "sftp-reread"


async def reread_sha256(sftp: asyncssh.SFTPClient, path: str, length: int) -> str:
    """The sha256 of the first ``length`` bytes of a remote file, read back over SFTP."""
    digest = hashlib.sha256()
    try:
        request = min(sftp.limits.max_read_len, MAX_BLOCK)
        async with sftp.open(path, "rb", block_size=request) as f:
            offset = 0
            while offset < length:
                block = cast(bytes, await f.read(min(HASH_BLOCK * 8, length - offset), offset))
                if not block:
                    break
                digest.update(block)
                offset += len(block)
    except asyncssh.SFTPError as e:
        raise TransferError(f"cannot re-read {shown(path)} to verify it: {shown(e.reason)}") from e
    return digest.hexdigest()
