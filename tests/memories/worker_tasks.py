"""TEST-ONLY task for the worker test: the real consolidation, held open long enough to kill.

It runs ``memory_consolidate`` inside a transaction, tells the test it is mid-task by
writing ``marker_path``, then sleeps before committing. Killing the worker during the
sleep must roll the merge back; the re-delivered task must then apply it exactly once.
"""

import time
import uuid
from pathlib import Path

from django.db import transaction

from memories.services.consolidation import memory_consolidate


def slow_consolidate(memory_id: str, marker_path: str, seconds: float) -> str:
    with transaction.atomic():
        outcome = memory_consolidate(memory_id=uuid.UUID(memory_id))
        with Path(marker_path).open("a") as marker:
            marker.write(f"{outcome.value}\n")
        time.sleep(seconds)
    return outcome.value
