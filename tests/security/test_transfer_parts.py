"""A ``NAME.part`` the tool did not write is the renter's file, never ours to delete (item 18).

Resuming truncated and deleted any ``NAME.part`` in LOCAL_DIR. Now only a ``.part`` marked by
its sidecar ``NAME.part.worldland`` is resumed or discarded; any other is refused unless
--overwrite, and the mark goes away with the ``.part``. The same holds on the far side of an
upload, and a pod cannot plant marks: received ``*.part.worldland`` names are skipped.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.sshd import SshdServer
from tests.transfer.conftest import Hook, random_file, sha256_of
from worldland_cli.main import app
from worldland_cli.transfer.download import download
from worldland_cli.transfer.errors import DestinationExistsError
from worldland_cli.transfer.model import Options
from worldland_cli.transfer.ssh import Credentials
from worldland_cli.transfer.targets import parse_ssh_url
from worldland_cli.transfer.upload import upload

MINE = b"the renter's own notes, not a transfer\n"


def _creds(sshd: SshdServer) -> Credentials:
    return Credentials(identity=sshd.client_key, known_hosts=sshd.known_hosts)


def _auth(sshd: SshdServer) -> list[str]:
    return ["--identity", str(sshd.client_key), "--known-hosts", str(sshd.known_hosts)]


def test_a_local_part_the_tool_did_not_write_is_kept_and_refused(
    sshd: SshdServer, tmp_path: Path
) -> None:
    src = random_file(tmp_path / "pod" / "f.bin", 3 * 255 * 1024)
    back = tmp_path / "back"
    back.mkdir()
    (back / "f.bin.part").write_bytes(MINE)
    result = CliRunner().invoke(app, ["receive", sshd.url(str(src)), str(back), *_auth(sshd)])
    assert result.exit_code == 1, result.output
    assert "f.bin.part" in result.output and "not written by worldland" in result.output
    assert "move" in result.output and "--overwrite" in result.output
    assert (back / "f.bin.part").read_bytes() == MINE
    assert sorted(p.name for p in back.iterdir()) == ["f.bin.part"]

    loc = parse_ssh_url(sshd.url(str(src)), "x")
    summary = asyncio.run(download(loc, back, _creds(sshd), Options(overwrite=True)))
    assert summary.files[0].resumed_from == 0
    assert sha256_of(back / "f.bin") == sha256_of(src)
    assert sorted(p.name for p in back.iterdir()) == ["f.bin"]


def test_a_remote_part_the_tool_did_not_write_is_kept_and_refused(
    sshd: SshdServer, tmp_path: Path
) -> None:
    src = random_file(tmp_path / "f.bin", 3 * 255 * 1024)
    remote = tmp_path / "pod"
    remote.mkdir()
    (remote / "f.bin.part").write_bytes(MINE)
    loc = parse_ssh_url(sshd.url(str(remote)), "x")
    with pytest.raises(DestinationExistsError, match="not written by worldland") as info:
        asyncio.run(upload([src], loc, _creds(sshd)))
    assert info.value.hint is not None and "--overwrite" in info.value.hint
    assert (remote / "f.bin.part").read_bytes() == MINE
    assert sorted(p.name for p in remote.iterdir()) == ["f.bin.part"]

    asyncio.run(upload([src], loc, _creds(sshd), Options(overwrite=True)))
    assert sha256_of(remote / "f.bin") == sha256_of(src)
    assert sorted(p.name for p in remote.iterdir()) == ["f.bin"]


def test_a_pod_cannot_plant_a_resume_mark(sshd: SshdServer, tmp_path: Path) -> None:
    tree = tmp_path / "pod" / "ckpt"
    random_file(tree / "model.pt", 100)
    (tree / "model.pt.part.worldland").write_text('{"worldland_part": 1}')
    back = tmp_path / "back"
    result = CliRunner().invoke(
        app, ["receive", sshd.url(str(tree)), str(back), "--json", *_auth(sshd)]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [f["path"] for f in doc["files"]] == ["ckpt/model.pt"]
    assert doc["skipped"] == [
        {"path": "ckpt/model.pt.part.worldland", "reason": "a resume mark of worldland's"}
    ]
    assert sorted(p.name for p in (back / "ckpt").iterdir()) == ["model.pt"]


def test_a_tree_holding_both_name_and_name_part_is_refused(
    sshd: SshdServer, tmp_path: Path
) -> None:
    # NAME's download would write into NAME.part, which is another received file.
    tree = tmp_path / "pod" / "ckpt"
    random_file(tree / "model.pt", 100)
    random_file(tree / "model.pt.part", 100)
    back = tmp_path / "back"
    result = CliRunner().invoke(app, ["receive", sshd.url(str(tree)), str(back), *_auth(sshd)])
    assert result.exit_code == 1, result.output
    assert "ckpt/model.pt.part" in result.output
    assert not back.exists()


def test_a_remote_mark_is_owner_only_and_never_written_through_a_link(
    sshd: SshdServer, tmp_path: Path
) -> None:
    """The far-side helper writes marks (one round trip): 0600, and a link planted at a
    mark's name is neither followed nor replaced."""
    src = random_file(tmp_path / "f.bin", 12 << 20)
    remote = tmp_path / "pod"
    remote.mkdir()
    mark = remote / "f.bin.part.worldland"
    modes: list[int] = []
    hook = Hook(6 << 20, lambda: modes.append(mark.stat().st_mode & 0o7777))
    loc = parse_ssh_url(sshd.url(str(remote)), "x")
    asyncio.run(upload([src], loc, _creds(sshd), Options(), hook))
    assert modes == [0o600]
    assert sorted(p.name for p in remote.iterdir()) == ["f.bin"]

    victim = tmp_path / "victim"
    victim.write_bytes(MINE)
    (remote / "g.bin.part.worldland").symlink_to(victim)
    with pytest.raises(DestinationExistsError, match="not written by worldland"):
        asyncio.run(upload([src.rename(tmp_path / "g.bin")], loc, _creds(sshd)))
    assert victim.read_bytes() == MINE
    assert (remote / "g.bin.part.worldland").is_symlink()
