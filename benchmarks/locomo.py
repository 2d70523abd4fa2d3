"""LoCoMo's format, read one way by the recall benchmark and the offline experiments.

Plain Python (no Django), so that ``scripts/offline_recall`` can import it from any venv:
how a turn becomes a memory's content, how a session date is read, and how evidence ids
are repaired (``"D8:6; D9:17"`` split, ``"D:11:26"`` → ``D11:26``, ``"D30:05"`` →
``D30:5``; ids naming no turn are dropped and counted).
"""

import re
from datetime import datetime

#: LoCoMo writes session dates as "1:56 pm on 8 May, 2023" (no time zone).
SESSION_DATE_FORMAT = "%I:%M %p on %d %B, %Y"
#: Questions of category 5 (adversarial) have no evidence turns: nothing to recall.
ADVERSARIAL_CATEGORY = 5
_EVIDENCE_ID = re.compile(r"D:?(\d+):(\d+)")


def session_date_parse(text: str) -> datetime:
    """A naive datetime; callers that store it decide the zone."""
    return datetime.strptime(text.strip(), SESSION_DATE_FORMAT)


def turn_content(turn: dict, *, photo_captions: bool = True) -> str:
    """``"Speaker: text"``, plus ``" [shares a photo: caption]"`` for a turn that shared an
    image, as LoCoMo's own baselines read it."""
    content = f"{turn['speaker']}: {turn['text']}"
    if photo_captions and turn.get("blip_caption"):
        content += f" [shares a photo: {turn['blip_caption']}]"
    return content


def evidence_repair(raw_ids: list[str], known_ids: set[str]) -> tuple[list[str], int]:
    """Canonical evidence ids that name a turn (in order, without repeats), and how many named none."""
    evidence, dropped = [], 0
    for raw in raw_ids:
        for session, index in _EVIDENCE_ID.findall(raw):
            dia_id = f"D{int(session)}:{int(index)}"
            if dia_id not in known_ids:
                dropped += 1
            elif dia_id not in evidence:
                evidence.append(dia_id)
    return evidence, dropped
