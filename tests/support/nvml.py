"""NVML faked at the pynvml boundary (no GPU here), answering the way real NVML does.

Import the fixtures into an area's conftest or test module::

    from tests.support.nvml import no_nvml, nvml_t4  # noqa: F401
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pynvml
import pytest
from pytest_mock import MockerFixture


@pytest.fixture
def nvml_t4(mocker: MockerFixture) -> str:
    """One Tesla T4 (15 GiB) on driver 535 / CUDA 12.2, the seed's GCP node; its UUID.

    Each test gets a GPU of its own, as each real machine has: the hub refuses a GPU UUID
    that another wallet registered, and tests share hubs.
    """
    return patch_t4(mocker)


def patch_t4(mocker: MockerFixture) -> str:
    """What :func:`nvml_t4` does, for a test that loads the driver midway (a reboot)."""
    gpu_uuid = f"GPU-{uuid.uuid4()}"
    mocker.patch("pynvml.nvmlInit")
    mocker.patch("pynvml.nvmlShutdown")
    mocker.patch("pynvml.nvmlSystemGetDriverVersion", return_value="535.183.01")
    mocker.patch("pynvml.nvmlSystemGetCudaDriverVersion", return_value=12020)
    mocker.patch("pynvml.nvmlDeviceGetCount", return_value=1)
    mocker.patch("pynvml.nvmlDeviceGetHandleByIndex", return_value="h0")
    mocker.patch("pynvml.nvmlDeviceGetMemoryInfo", return_value=SimpleNamespace(total=15 << 30))
    mocker.patch("pynvml.nvmlDeviceGetPciInfo", return_value=SimpleNamespace(busId="0:4.0"))
    mocker.patch("pynvml.nvmlDeviceGetName", return_value="Tesla T4")
    mocker.patch("pynvml.nvmlDeviceGetUUID", return_value=gpu_uuid)
    return gpu_uuid


@pytest.fixture
def no_nvml(mocker: MockerFixture) -> None:
    """A machine without the NVIDIA driver: nvmlInit fails the way it does there."""
    mocker.patch(
        "pynvml.nvmlInit",
        side_effect=pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND),
    )
