"""Every provider requirement, in the order a person would fix them."""

from __future__ import annotations

from worldland_cli.requirements.base import Finding, Requirement, Status

__all__ = ["Finding", "Requirement", "Status", "all_requirements"]


def all_requirements() -> list[Requirement]:
    from worldland_cli.requirements import gpu

    return [
        gpu.Driver(),
        gpu.NvidiaSmi(),
    ]
