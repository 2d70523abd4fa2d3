"""``manage.py soak``: many threads of mixed add/query/bootstrap against a running Anima,
then the invariants checked in its database.

Run it beside `scripts/serve` (same ANIMA_DATA_DIR or DATABASE_URL, so this command
reads the server's database), with throttling off and consolidation off (merges change
access counts on purpose; the soak checks concurrency, not consolidation):

    ANIMA_RATE_LIMIT=off ANIMA_SEMANTIC_CONSOLIDATION=false ./scripts/serve &
    .venv/bin/python manage.py soak --threads 50 --seconds 60

It works in a fresh namespace of its own (X-Anima-Namespace, so the key must have the
admin scope), with overlapping contents so that threads add the same texts at once.
Checked afterwards: no 5xx; no two live memories share a content hash; every
association's count equals the co-occurrence events the answers imply; every memory's
access count equals its duplicate adds plus the times queries returned it.
"""

import json
import random
import threading
import time
from collections import Counter
from itertools import combinations

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from memories.models import Memory, MemoryAssociation

SUBJECTS = ["Dana", "Alice", "Bob", "the staging server", "the billing service", "Mia", "the CI runner", "Priya"]
FACTS = ["prefers tea", "runs Debian", "moved to Lisbon", "owns the deploy key", "is on call", "likes Rust", "reads at night"]
QUERIES = ["Who is on call?", "What does Dana prefer?", "Which server runs Debian?", "Who owns the deploy key?", "Who likes Rust?"]


class Command(BaseCommand):
    help = "Concurrent mixed traffic against a running Anima, then the invariants checked in its database."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000")
        parser.add_argument("--key-file", default=str(settings.ANIMA_DATA_DIR / "local-api-key"))
        parser.add_argument("--threads", type=int, default=50)
        parser.add_argument("--seconds", type=float, default=60)
        parser.add_argument("--contents", type=int, default=150, help="distinct texts the threads share")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--report", help="write the figures as JSON here")

    def handle(self, *args, url, key_file, threads, seconds, contents, seed, report, **options):
        import logging

        logging.getLogger("httpx").setLevel(logging.WARNING)
        key = open(key_file).read().strip()
        namespace = f"soak-{int(time.time())}"
        headers = {"Authorization": f"Bearer {key}", "X-Anima-Namespace": namespace}
        rng = random.Random(seed)
        texts = [f"Soak {i}: {rng.choice(SUBJECTS)} {rng.choice(FACTS)} (item {i})." for i in range(contents)]
        lock = threading.Lock()
        statuses, duplicate_adds, returned, pairs = Counter(), Counter(), Counter(), Counter()
        deadline = time.monotonic() + seconds

        def worker(number: int):
            local = random.Random(seed * 1000 + number)
            with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                conversation = f"soak-{number}"
                while time.monotonic() < deadline:
                    roll = local.random()
                    if roll < 0.4:
                        response = client.post("/api/v1/memories/add", json={"content": local.choice(texts)})
                    elif roll < 0.85:
                        body = {"query": local.choice(QUERIES), "limit": 5, "conversationId": conversation,
                                "similarityThreshold": 0.0}
                        response = client.post("/api/v1/memories/query", json=body)
                    else:
                        response = client.get("/api/v1/memories/bootstrap", params={"limit": 20})
                    with lock:
                        statuses[response.status_code] += 1
                        if response.status_code == 200 and response.request.url.path.endswith("/add"):
                            duplicate_adds[response.json()["data"]["memory"]["id"]] += 1
                        elif response.status_code == 200 and response.request.url.path.endswith("/query"):
                            ids = [m["id"] for m in response.json()["data"]["memories"]]
                            returned.update(ids)
                            if len(ids) >= 2:
                                pairs.update(tuple(sorted(pair)) for pair in combinations(set(ids), 2))

        started = time.monotonic()
        pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        elapsed = time.monotonic() - started
        self._wait_for_queue()

        live = Memory.objects.filter(namespace=namespace, deleted_at__isnull=True)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM (SELECT content_hash FROM memories_memory WHERE namespace = %s "
                "AND deleted_at IS NULL GROUP BY content_hash HAVING count(*) > 1) d",
                [namespace],
            )
            shared_hashes = cursor.fetchone()[0]
        stored = {(str(a), str(b)): n for a, b, n in MemoryAssociation.objects.filter(namespace=namespace).values_list(
            "memory_a_id", "memory_b_id", "co_occurrence_count")}
        wrong_pairs = sum(1 for pair, n in pairs.items() if stored.get(pair) != n) + len(set(stored) - set(pairs))
        wrong_access = sum(
            1 for mid, count in live.values_list("id", "access_count")
            if count != duplicate_adds[str(mid)] + returned[str(mid)]
        )
        figures = {
            "namespace": namespace,
            "threads": threads,
            "seconds": round(elapsed, 1),
            "requests": sum(statuses.values()),
            "requestsPerSecond": round(sum(statuses.values()) / elapsed, 1),
            "statuses": dict(statuses),
            "serverErrors": sum(n for status, n in statuses.items() if status >= 500),
            "liveMemories": live.count(),
            "sharedHashes": shared_hashes,
            "associationsChecked": len(stored),
            "associationsWrong": wrong_pairs,
            "accessCountsChecked": live.count(),
            "accessCountsWrong": wrong_access,
        }
        self.stdout.write(json.dumps(figures, indent=2))
        if report:
            with open(report, "w") as file:
                json.dump(figures, file, indent=2)
        if figures["serverErrors"] or shared_hashes or wrong_pairs or wrong_access:
            raise CommandError("an invariant failed (see the figures above)")

    def _wait_for_queue(self, timeout: float = 300) -> None:
        """Until no background work waits (claimed rows are deleted only when their batch commits)."""
        from memories.models import BackgroundWork

        deadline = time.monotonic() + timeout
        while BackgroundWork.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
