"""``manage.py apply_decay``: run the daily φ decay now (idempotent: once per 30 days per memory)."""

from django.core.management.base import BaseCommand

from memories.services.upkeep import memories_apply_decay


class Command(BaseCommand):
    help = "Decay φ × 0.95 of memories idle ≥ 30 days with φ > 0.5 (never twice within 30 days)."

    def handle(self, *args, **options):
        decayed = memories_apply_decay()
        self.stdout.write(self.style.SUCCESS(f"decayed {decayed} memories"))
