"""Schemathesis fuzzes every operation of the project's own OpenAPI schema against a live
server: no 500, no status code, content type or body the schema does not describe; then
again with every body and query string carrying an edge value (``tests/ops/fuzz_hooks.py``):
no response ≥ 500.

Deterministic generation (no seed drift between runs) and a bounded number of examples
per operation keep it reproducible and under a minute.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES_PER_OPERATION = 4
#: Operations in the schema; a route that drops out of the schema fails this test.
OPERATIONS = 27
EDGE_EXAMPLES_PER_OPERATION = 25
ROOT = Path(__file__).resolve().parents[2]


def run_schemathesis(url: str, key: str, *, checks: str, examples: int, phases: str, env: dict | None = None) -> int:
    """Run schemathesis against ``url``'s schema; fails on a non-zero exit; returns the operations tested."""
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")), "run", f"{url}/api/schema/",
            "--header", f"Authorization: Bearer {key}",
            "--checks", checks,
            "--max-examples", str(examples),
            "--generation-deterministic",
            "--phases", phases,
            "--request-timeout", "30",
        ],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert result.returncode == 0, result.stdout[-6000:]
    tested = next(line for line in result.stdout.splitlines() if line.strip().startswith("Tested:"))
    return int(tested.split(":")[1])


@pytest.mark.django_db(transaction=True)
def test_fuzzing_the_schema_finds_no_server_error_and_no_violation(live_server, api_key_for, settings):
    settings.ANIMA_RATE_LIMIT = "off"  # thousands of requests from one key are the point here

    tested = run_schemathesis(
        live_server.url,
        api_key_for("admin"),
        checks="not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        examples=EXAMPLES_PER_OPERATION,
        phases="examples,coverage,fuzzing",
    )

    assert tested >= OPERATIONS


@pytest.mark.django_db(transaction=True)
def test_edge_values_in_every_body_and_query_never_cause_a_server_error(live_server, api_key_for, settings):
    settings.ANIMA_RATE_LIMIT = "off"

    tested = run_schemathesis(
        live_server.url,
        api_key_for("admin"),
        checks="not_a_server_error",
        examples=EDGE_EXAMPLES_PER_OPERATION,
        phases="fuzzing",
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.ops.fuzz_hooks", "PYTHONPATH": str(ROOT)},
    )

    assert tested >= OPERATIONS
