"""Host.private_temp_dir: settings files for a helper program, private from the first byte."""

from __future__ import annotations

import stat

from worldland_cli.host import Host


def test_a_private_temp_dir_holds_its_files_for_us_alone_until_removed() -> None:
    host = Host()
    directory = host.private_temp_dir("worldland-test-", {"known_hosts": "alias ssh-ed25519 K\n"})
    try:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        known_hosts = directory / "known_hosts"
        assert stat.S_IMODE(known_hosts.stat().st_mode) == 0o600
        assert known_hosts.read_text() == "alias ssh-ed25519 K\n"
    finally:
        host.remove_temp_dir(directory)
    assert not directory.exists()
    host.remove_temp_dir(directory)  # gone already: nothing to do
