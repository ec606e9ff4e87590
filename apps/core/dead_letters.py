"""Dead letters: work that failed its last retry, kept with why, what and how often, for replay.

Each kind of work registers how it is replayed (`@replayer("webhook_event")`); the admin and the
operator commands call `dead_letter_replay`, which runs it and records the outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.core.models import DeadLetter

logger = logging.getLogger(__name__)

Replayer = Callable[[DeadLetter], None]
_replayers: dict[str, Replayer] = {}


def replayer(kind: str) -> Callable[[Replayer], Replayer]:
    def register(func: Replayer) -> Replayer:
        _replayers[kind] = func
        return func

    return register


def dead_letter_record(
    *, kind: str, reference: str, reason: str, payload: dict[str, Any], attempts: int
) -> DeadLetter:
    """Records failed work; inside the caller's transaction when there is one (it commits with the
    state change that gave up on the work)."""
    return DeadLetter.objects.create(
        kind=kind, reference=reference, reason=reason[:500], payload=payload, attempts=attempts
    )


def can_replay(dead_letter: DeadLetter) -> bool:
    return dead_letter.kind in _replayers and dead_letter.replayed_at is None


@transaction.atomic(durable=True)
def _claim(dead_letter_id: int) -> DeadLetter | None:
    letter = (
        DeadLetter.objects.select_for_update().filter(pk=dead_letter_id, replayed_at__isnull=True).first()
    )
    if letter is not None:
        letter.replayed_at = timezone.now()
        letter.save(update_fields=["replayed_at"])
    return letter


def dead_letter_replay(*, dead_letter_id: int) -> bool:
    """Replays once: the letter is claimed first, so two operators clicking replay run it once."""
    letter = _claim(dead_letter_id)
    if letter is None or letter.kind not in _replayers:
        return False
    try:
        _replayers[letter.kind](letter)
    except Exception as exc:
        logger.exception("replay of dead letter %s failed", dead_letter_id)
        DeadLetter.objects.filter(pk=dead_letter_id).update(replay_error=str(exc)[:500])
        return False
    return True
