"""Scheduled upkeep: φ decay and the access-log clean-up, their schedules and the command."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from memories.models import Memory, MemoryAccess
from memories.services.upkeep import access_log_clean, memories_apply_decay
from tests.factories import make_memories

pytestmark = pytest.mark.django_db


def idle(days: float, now, **fields) -> dict:
    return {"last_accessed": now - timedelta(days=days), **fields}


def phis() -> dict[str, float]:
    return dict(Memory.objects.values_list("content", "resonance_phi"))


def test_decay_touches_only_idle_memories_with_enough_phi():
    now = timezone.now()
    make_memories(
        [
            {"content": "idle", **idle(31, now, resonance_phi=2.0)},
            {"content": "exactly 30 days", **idle(30, now, resonance_phi=2.0)},
            {"content": "recent", **idle(29, now, resonance_phi=2.0)},
            {"content": "low phi", **idle(90, now, resonance_phi=0.5)},
            {"content": "pinned", **idle(90, now, resonance_phi=2.0, pinned=True)},
            {"content": "deleted", **idle(90, now, resonance_phi=2.0, deleted_at=now)},
        ],
        with_embeddings=False,
    )

    decayed = memories_apply_decay(now=now)

    assert decayed == 2
    assert phis() == pytest.approx(
        {"idle": 1.9, "exactly 30 days": 1.9, "recent": 2.0, "low phi": 0.5, "pinned": 2.0, "deleted": 2.0}
    )
    stamped = dict(Memory.objects.values_list("content", "phi_decayed_at"))
    assert stamped["idle"] == stamped["exactly 30 days"] == now
    assert stamped["recent"] is None and stamped["pinned"] is None


def test_decay_run_twice_on_the_same_day_decays_once():
    now = timezone.now()
    make_memories([{"content": "idle", **idle(40, now, resonance_phi=1.0)}], with_embeddings=False)

    first = memories_apply_decay(now=now)
    second = memories_apply_decay(now=now + timedelta(hours=6))

    assert (first, second) == (1, 0)
    assert phis()["idle"] == pytest.approx(0.95)
    assert Memory.objects.get().phi_decayed_at == now


def test_decay_applies_again_thirty_one_days_later():
    now = timezone.now()
    make_memories([{"content": "idle", **idle(40, now, resonance_phi=1.0)}], with_embeddings=False)
    memories_apply_decay(now=now)
    later = now + timedelta(days=31)

    assert memories_apply_decay(now=later) == 1

    assert phis()["idle"] == pytest.approx(0.95 * 0.95)
    assert Memory.objects.get().phi_decayed_at == later


def test_decay_stops_at_half():
    now = timezone.now()
    make_memories([{"content": "idle", **idle(40, now, resonance_phi=0.52)}], with_embeddings=False)

    assert memories_apply_decay(now=now) == 1
    assert memories_apply_decay(now=now + timedelta(days=31)) == 0
    assert phis()["idle"] == pytest.approx(0.52 * 0.95)


def test_access_log_clean_removes_rows_older_than_the_retention(settings):
    assert settings.ANIMA_ACCESS_LOG_RETENTION_HOURS == 24
    now = timezone.now()
    [memory] = make_memories([{"content": "m"}], with_embeddings=False)
    old, fresh = MemoryAccess.objects.bulk_create(
        [
            MemoryAccess(memory=memory, accessed_at=now - timedelta(hours=25)),
            MemoryAccess(memory=memory, accessed_at=now - timedelta(hours=23)),
        ]
    )

    removed = access_log_clean(now=now)

    assert removed == 1
    assert list(MemoryAccess.objects.values_list("id", flat=True)) == [fresh.id]


def test_access_log_retention_is_the_setting(settings):
    settings.ANIMA_ACCESS_LOG_RETENTION_HOURS = 1
    now = timezone.now()
    [memory] = make_memories([{"content": "m"}], with_embeddings=False)
    MemoryAccess.objects.bulk_create(
        [
            MemoryAccess(memory=memory, accessed_at=now - timedelta(minutes=90)),
            MemoryAccess(memory=memory, accessed_at=now - timedelta(minutes=30)),
        ]
    )

    assert access_log_clean(now=now) == 1
    assert MemoryAccess.objects.count() == 1


# A plain (non-transactional) test: pytest-django runs these before any transactional
# test, whose flush would empty the table the migrations filled.
def test_migrations_schedule_the_decay_daily_and_the_clean_up_hourly():
    schedules = dict(
        Schedule.objects.filter(name__startswith="anima: ").values_list("name", "func").order_by("name")
    )
    types = dict(Schedule.objects.filter(name__startswith="anima: ").values_list("name", "schedule_type"))

    assert schedules["anima: φ decay"] == "memories.tasks.apply_decay"
    assert types["anima: φ decay"] == Schedule.DAILY == "D"
    assert schedules["anima: access-log clean-up"] == "memories.tasks.clean_access_log"
    assert types["anima: access-log clean-up"] == Schedule.HOURLY == "H"
    assert Schedule.objects.get(name="anima: φ decay").repeats == -1


def test_apply_decay_command_prints_how_many_decayed():
    now = timezone.now()
    make_memories(
        [
            {"content": "idle", **idle(40, now, resonance_phi=2.0)},
            {"content": "idle too", **idle(50, now, resonance_phi=3.0)},
            {"content": "fresh", "resonance_phi": 3.0},
        ],
        with_embeddings=False,
    )
    out = StringIO()

    call_command("apply_decay", stdout=out)

    assert "decayed 2 memories" in out.getvalue()
    assert phis() == pytest.approx({"idle": 1.9, "idle too": 2.85, "fresh": 3.0})
