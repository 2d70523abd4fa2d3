"""Anima under load: the traffic of assistants using their memory (SPEC §1, "load").

Each simulated user is an assistant in a conversation: 20 % adds of new content, 60 %
queries (limit 20, questions from a pool of 50 so the embedding cache warms, the
conversation's id sent with each), 20 % bootstraps (limit 50). After 10–30 requests the
user starts a new conversation (a new ``conversationId``, 1–200 characters as the API
requires: ``locust-`` + 32 hex digits).

Environment:
  ANIMA_API_KEY                  the key (else the key file below)
  ANIMA_API_KEY_FILE             default $ANIMA_DATA_DIR/local-api-key, else var/local-api-key
  ANIMA_LOCUST_THINK_SECONDS     pause between a user's requests (default 1; 0: saturation)
  ANIMA_LOCUST_P95_MS            p95 budget of every endpoint in ms (default 50);
                                 ANIMA_LOCUST_P95_MS_ADD / _QUERY / _BOOTSTRAP override one
  ANIMA_LOCUST_MAX_ERROR_RATE    largest allowed share of failed requests (default 0.01)
  ANIMA_LOCUST_CHECK             false: report only, never fail the run (saturation runs)

At the end the run fails (exit code 1) when an endpoint's p95 is over its budget or the
error rate is over its limit; the reason is printed.

    .venv/bin/locust -f locustfiles/locustfile.py --headless -u 50 -r 10 -t 60s --host http://127.0.0.1:8000
"""

import itertools
import logging
import os
import random
import sys
import uuid
from pathlib import Path

from locust import FastHttpUser, constant, events, task

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from locustfiles.budget import EndpointStats, budget_violations, max_error_rate, p95_budgets  # noqa: E402
from locustfiles.texts import QUERY_TEXTS, unique_memory_text  # noqa: E402

logger = logging.getLogger("anima.locust")

QUERY_LIMIT = 20
BOOTSTRAP_LIMIT = 50
CONVERSATION_LENGTH = (10, 30)
THINK_SECONDS = float(os.environ.get("ANIMA_LOCUST_THINK_SECONDS", "1"))
_add_seeds = itertools.count(random.randrange(1_000_000))


def api_key() -> str:
    key = os.environ.get("ANIMA_API_KEY", "").strip()
    if key:
        return key
    default_dir = os.environ.get("ANIMA_DATA_DIR") or str(Path(__file__).resolve().parent.parent / "var")
    path = Path(os.environ.get("ANIMA_API_KEY_FILE") or Path(default_dir) / "local-api-key")
    try:
        return path.read_text().strip()
    except OSError:
        raise SystemExit(f"No API key: set ANIMA_API_KEY or ANIMA_API_KEY_FILE (tried {path}).") from None


class AssistantUser(FastHttpUser):
    wait_time = constant(THINK_SECONDS)

    def on_start(self):
        self.headers = {"Authorization": f"Bearer {API_KEY}"}
        self._new_conversation()

    def _new_conversation(self):
        self.conversation_id = f"locust-{uuid.uuid4().hex}"
        self.requests_left = random.randint(*CONVERSATION_LENGTH)

    def _turn(self):
        self.requests_left -= 1
        if self.requests_left <= 0:
            self._new_conversation()

    def _check(self, response, expected_statuses):
        if response.status_code not in expected_statuses:
            response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
            return
        try:
            ok = response.json().get("success") is True
        except ValueError:
            ok = False
        if not ok:
            response.failure("the answer is not a success envelope")

    @task(2)
    def add(self):
        body = {"content": unique_memory_text(next(_add_seeds)), "source": "locust", "tags": ["load-test"]}
        with self.client.post(
            "/api/v1/memories/add", json=body, headers=self.headers, name="add", catch_response=True
        ) as response:
            self._check(response, (200, 201))
        self._turn()

    @task(6)
    def query(self):
        body = {"query": random.choice(QUERY_TEXTS), "limit": QUERY_LIMIT, "conversationId": self.conversation_id}
        with self.client.post(
            "/api/v1/memories/query", json=body, headers=self.headers, name="query", catch_response=True
        ) as response:
            self._check(response, (200,))
        self._turn()

    @task(2)
    def bootstrap(self):
        path = f"/api/v1/memories/bootstrap?limit={BOOTSTRAP_LIMIT}&conversationId={self.conversation_id}"
        with self.client.get(path, headers=self.headers, name="bootstrap", catch_response=True) as response:
            self._check(response, (200,))
        self._turn()


@events.quitting.add_listener
def _check_budgets(environment, **kwargs):
    """Fail the run (exit code 1) when an endpoint's p95 or the error rate is over budget."""
    if os.environ.get("ANIMA_LOCUST_CHECK", "true").lower() in ("0", "false", "no", "off"):
        return
    endpoints = [
        EndpointStats(
            name=entry.name,
            requests=entry.num_requests,
            failures=entry.num_failures,
            p95_ms=entry.get_response_time_percentile(0.95) or 0.0,
        )
        for entry in environment.stats.entries.values()
    ]
    problems = budget_violations(endpoints, budgets=p95_budgets(), error_rate=max_error_rate())
    if problems:
        logger.error("load test failed: %s", "; ".join(problems))
        environment.process_exit_code = 1
    else:
        logger.info("load test passed: every p95 within budget, error rate within limit")
        environment.process_exit_code = 0


API_KEY = api_key()
