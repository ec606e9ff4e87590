import os
import subprocess
import sys
import threading
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection, transaction

from apps.audit.models import AuditLog
from apps.audit.services import audit_record

THREADS = 8
RECORDS_PER_THREAD = 25


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain():
    # given: 8 writers released at the same moment, each committing 25 records of its own
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            start.wait()
            for i in range(RECORDS_PER_THREAD):
                with transaction.atomic(durable=True):
                    audit_record(
                        actor=None,
                        action="wallet.transfer",
                        entity_type="wallet",
                        entity_id=f"wal_{number}_{i}",
                    )
        except BaseException as error:  # reported by the main thread below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]

    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then: every record was written, each on its own predecessor, and the real command agrees
    assert errors == []
    assert AuditLog.objects.count() == THREADS * RECORDS_PER_THREAD
    assert AuditLog.objects.values("prev_hash").distinct().count() == THREADS * RECORDS_PER_THREAD
    result = _run_verify_audit_chain()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"audit chain OK: {THREADS * RECORDS_PER_THREAD} rows"


def _run_verify_audit_chain() -> subprocess.CompletedProcess:
    """`manage.py verify_audit_chain` as an operator runs it, against the test database."""
    db = connection.settings_dict
    credentials = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{credentials}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    return subprocess.run(
        [sys.executable, str(settings.BASE_DIR / "manage.py"), "verify_audit_chain"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
