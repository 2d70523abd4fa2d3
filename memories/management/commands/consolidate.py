"""``manage.py consolidate``: apply the consolidation rule to existing memories.

The same rule as after each add (``memories.services.consolidation``), oldest first,
with a progress bar and a summary. Safe to re-run: merged memories are gone and linked
pairs are already listed, so a second run changes nothing.
"""

from collections import Counter

from django.core.management.base import BaseCommand
from tqdm import tqdm

from memories.models import LIVE, Memory
from memories.services.consolidation import Outcome, memory_consolidate


class Command(BaseCommand):
    help = "Merge re-statements and link near-duplicates among existing memories (SPEC §5)."

    def add_arguments(self, parser):
        parser.add_argument("--namespace", help="only this namespace (default: all)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, namespace=None, no_progress=False, **options):
        memories = Memory.objects.filter(LIVE)
        if namespace:
            memories = memories.filter(namespace=namespace)
        ids = list(memories.order_by("created_at", "id").values_list("id", flat=True))
        outcomes = Counter()
        for memory_id in tqdm(ids, desc="consolidating", unit="memory", disable=no_progress, file=self.stderr):
            outcomes[memory_consolidate(memory_id=memory_id)] += 1
        self.stdout.write(
            self.style.SUCCESS(
                f"checked {len(ids)}: merged {outcomes[Outcome.MERGED]}, "
                f"near-duplicates linked {outcomes[Outcome.LINKED]}, "
                f"skipped {outcomes[Outcome.SKIPPED] + outcomes[Outcome.NO_CANDIDATE]}"
            )
        )
