"""Container health checks that need more than an HTTP request.

    python docker/healthcheck.py beat

beat: Celery beat is alive if it keeps scheduling. The outbox sweep is due every 30 s and the
database scheduler records each run at least every 3 minutes, so a last run older than
BEAT_HEALTH_MAX_AGE_SECONDS (default 300) means beat has stopped scheduling. Exit 0 healthy, 1 not.
"""

import os
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")


def beat() -> int:
    import django

    django.setup()
    from django.utils import timezone
    from django_celery_beat.models import PeriodicTask

    max_age = timedelta(seconds=int(os.environ.get("BEAT_HEALTH_MAX_AGE_SECONDS", "300")))
    last_run = PeriodicTask.objects.filter(name="outbox-sweep").values_list("last_run_at", flat=True).first()
    if last_run is None or timezone.now() - last_run > max_age:
        print(f"beat unhealthy: outbox-sweep last ran at {last_run}", file=sys.stderr)
        return 1
    return 0


CHECKS = {"beat": beat}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in CHECKS:
        print(f"usage: python docker/healthcheck.py {{{','.join(CHECKS)}}}", file=sys.stderr)
        sys.exit(2)
    sys.exit(CHECKS[sys.argv[1]]())
