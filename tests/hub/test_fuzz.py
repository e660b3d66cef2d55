"""Fuzz every operation from the hub's own /openapi.json: no input may produce a 5xx.

schemathesis generates valid and invalid requests from the served schema and sends them over
real HTTP to a hub subprocess, authenticated (a person's token, or the admin token for the
operator path) so the fuzzing reaches past the 401s into validation and the database.
Examples are bounded and derandomised so the run stays short and reproducible.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.hub.conftest import STUB_JOIN, bearer, login
from tests.support.hub import RunningHub, start_hub


@pytest.fixture(scope="module")
def fuzz_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    running = start_hub(tmp_path_factory.mktemp("fuzzhub"), extra_args=STUB_JOIN)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def person_token(fuzz_hub: RunningHub) -> str:
    with fuzz_hub.client() as client:
        return login(client, Account.create(), fuzz_hub.siwe_domain)


def fuzzer(operation: Any, headers: dict[str, str]) -> Any:
    """A bounded hypothesis test that sends generated requests for one operation."""

    @settings(
        max_examples=20,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def fuzz(case: Any) -> None:
        case.call_and_validate(
            headers=headers, checks=[not_a_server_error, response_schema_conformance]
        )

    return fuzz


@pytest.mark.slow
def test_no_server_errors(fuzz_hub: RunningHub, person_token: str) -> None:
    # Loaded in the test (not via schemathesis.pytest.from_fixture, which breaks on pytest 9)
    # because the schema only exists once the hub runs.
    schema = schemathesis.openapi.from_url(f"{fuzz_hub.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:
        is_admin = operation.path.startswith("/v1/admin")
        fuzzer(operation, bearer(fuzz_hub.admin_token if is_admin else person_token))()
