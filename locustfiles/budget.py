"""The pass/fail rule of a load run, kept free of locust so that tests can import it.

A run fails when an endpoint's p95 exceeds its budget or when the share of failed
requests over all endpoints exceeds the allowed error rate.
"""

import os
from dataclasses import dataclass

DEFAULT_P95_BUDGET_MS = 50.0
DEFAULT_MAX_ERROR_RATE = 0.01
ENDPOINTS = ("add", "query", "bootstrap")


@dataclass(frozen=True)
class EndpointStats:
    name: str
    requests: int
    failures: int
    p95_ms: float


def p95_budgets(environ=os.environ) -> dict[str, float]:
    """``ANIMA_LOCUST_P95_MS`` for every endpoint, ``ANIMA_LOCUST_P95_MS_<ENDPOINT>`` to override one."""
    default = float(environ.get("ANIMA_LOCUST_P95_MS", DEFAULT_P95_BUDGET_MS))
    return {name: float(environ.get(f"ANIMA_LOCUST_P95_MS_{name.upper()}", default)) for name in ENDPOINTS}


def max_error_rate(environ=os.environ) -> float:
    return float(environ.get("ANIMA_LOCUST_MAX_ERROR_RATE", DEFAULT_MAX_ERROR_RATE))


def budget_violations(endpoints: list[EndpointStats], *, budgets: dict[str, float], error_rate: float) -> list[str]:
    """One sentence per broken budget; empty when the run passes."""
    problems = []
    for endpoint in endpoints:
        budget = budgets.get(endpoint.name)
        if budget is not None and endpoint.requests and endpoint.p95_ms > budget:
            problems.append(f"{endpoint.name}: p95 {endpoint.p95_ms:.0f} ms > budget {budget:.0f} ms")
    requests = sum(endpoint.requests for endpoint in endpoints)
    failures = sum(endpoint.failures for endpoint in endpoints)
    if requests == 0:
        problems.append("no requests were made")
    elif failures / requests > error_rate:
        problems.append(f"error rate {failures / requests:.2%} > {error_rate:.2%} ({failures} of {requests})")
    return problems
