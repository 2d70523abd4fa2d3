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


@pytest.mark.django_db(transaction=True)
def test_fuzzing_the_schema_finds_no_server_error_and_no_violation(live_server, api_key_for, settings):
    settings.ANIMA_RATE_LIMIT = "off"  # thousands of requests from one key are the point here
    key = api_key_for("admin")
    schemathesis = Path(sys.executable).with_name("schemathesis")

    result = subprocess.run(
        [
            str(schemathesis), "run", f"{live_server.url}/api/schema/",
            "--header", f"Authorization: Bearer {key}",
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples", str(EXAMPLES_PER_OPERATION),
            "--generation-deterministic",
            "--phases", "examples,coverage,fuzzing",
            "--request-timeout", "30",
        ],
        capture_output=True, text=True, timeout=600,
    )

    assert result.returncode == 0, result.stdout[-6000:]
    tested = next(line for line in result.stdout.splitlines() if line.strip().startswith("Tested:"))
    assert int(tested.split(":")[1]) >= OPERATIONS


@pytest.mark.django_db(transaction=True)
def test_edge_values_in_every_body_and_query_never_cause_a_server_error(live_server, api_key_for, settings):
    settings.ANIMA_RATE_LIMIT = "off"
    key = api_key_for("admin")
    schemathesis = Path(sys.executable).with_name("schemathesis")

    result = subprocess.run(
        [
            str(schemathesis), "run", f"{live_server.url}/api/schema/",
            "--header", f"Authorization: Bearer {key}",
            "--checks", "not_a_server_error",
            "--max-examples", str(EDGE_EXAMPLES_PER_OPERATION),
            "--generation-deterministic",
            "--phases", "fuzzing",
            "--request-timeout", "30",
        ],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.ops.fuzz_hooks", "PYTHONPATH": str(ROOT)},
    )

    assert result.returncode == 0, result.stdout[-6000:]
    tested = next(line for line in result.stdout.splitlines() if line.strip().startswith("Tested:"))
    assert int(tested.split(":")[1]) >= OPERATIONS
