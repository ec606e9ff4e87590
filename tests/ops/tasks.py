"""Tasks that exist only for the operations tests (the worker imports them with `-I tests.ops.tasks`)."""

import time
from pathlib import Path

from celery import shared_task
from django.db.models import F

from apps.payments.models import Payment


@shared_task
def read_write_read(payment_id: str) -> list[str]:
    """Which database served a read before and after this task wrote."""
    before = Payment.objects.get(pk=payment_id)._state.db
    Payment.objects.filter(pk=payment_id).update(attempts=F("attempts"))
    after = Payment.objects.get(pk=payment_id)._state.db
    return [before, after]


@shared_task
def slow_job(marker_dir: str, job_id: str, seconds: float) -> None:
    """Leaves `<job>.started.<n>` when a run begins and `<job>.finished` when one completes.

    No options of its own: it runs with the project's task defaults (acks_late, reject on worker
    lost), which is what the shutdown tests prove."""
    directory = Path(marker_dir)
    runs = len(list(directory.glob(f"{job_id}.started.*")))
    (directory / f"{job_id}.started.{runs + 1}").touch()
    time.sleep(seconds)
    (directory / f"{job_id}.finished").touch()
