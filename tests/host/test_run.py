"""Host.run's promise that a hanging command never hangs the caller."""

from __future__ import annotations

from pathlib import Path

import pytest

from worldland_cli.host import Host


@pytest.mark.timeout(30)
def test_a_descendant_that_escapes_the_process_group_does_not_hold_run(tmp_path: Path) -> None:
    """The killed command's setsid'd child keeps stdout open for a minute; run returns anyway."""
    host = Host(tmp_path)
    script = "setsid sleep 60 & echo started; sleep 60"
    res = host.run(["sh", "-c", script], timeout=0.5)
    assert res.timed_out
    assert res.returncode is None


def test_a_hanging_command_reports_its_output_so_far(tmp_path: Path) -> None:
    res = Host(tmp_path).run(["sh", "-c", "echo partial; sleep 60"], timeout=0.5)
    assert res.timed_out and res.stdout == "partial\n"
    assert "timed out" in res.describe_failure()
