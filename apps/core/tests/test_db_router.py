"""The read-replica router without a replica, and how REPLICA_DATABASE_URL configures one.

Routing against a real streaming replica is proven in tests/ops/test_read_replica.py.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import router

from apps.core import db_routing
from apps.payments.models import Payment

ROOT = Path(__file__).resolve().parents[3]


def settings_with(**env: str) -> dict:
    """The DATABASES / DATABASE_ROUTERS a process started with `env` would have."""
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps({'databases': settings.DATABASES, 'routers': settings.DATABASE_ROUTERS}, default=str))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": "x" * 50,
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "CELERY_BROKER_URL": "memory://",
            "FIELD_ENCRYPTION_KEYS": "k:" + "A" * 43 + "=",
            "METRICS_TOKEN": "metrics-token",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_replica_database_url_adds_a_replica_that_tests_mirror_and_migrations_skip():
    configured = settings_with(
        DATABASE_URL="postgres://paydesk:pw@primary:5432/paydesk",
        REPLICA_DATABASE_URL="postgres://paydesk:pw@standby:5432/paydesk",
    )
    replica = configured["databases"]["replica"]
    assert (replica["HOST"], replica["NAME"]) == ("standby", "paydesk")
    assert replica["TEST"]["MIRROR"] == "default"
    assert configured["routers"] == ["apps.core.db_routing.PrimaryReplicaRouter"]
    assert db_routing.PrimaryReplicaRouter().allow_migrate("replica", "payments") is False


def test_without_replica_database_url_there_is_only_the_primary():
    configured = settings_with(
        DATABASE_URL="postgres://paydesk:pw@primary:5432/paydesk", REPLICA_DATABASE_URL=""
    )
    assert set(configured["databases"]) == {"default"}


@pytest.mark.django_db
def test_without_a_replica_routing_is_djangos_own():
    assert not db_routing.replica_configured()
    routing = db_routing.PrimaryReplicaRouter()
    assert routing.db_for_read(Payment) is None
    assert routing.db_for_write(Payment) is None
    assert router.db_for_read(Payment) == "default"
    with db_routing.unit_of_work() as pin:
        Payment.objects.filter(pk="pay_none").update(description="x")
        assert not pin.wrote  # nothing to pin to without a replica


def test_primary_block_nests_and_restores():
    with db_routing.unit_of_work():
        assert not db_routing.reads_on_primary()
        with db_routing.primary():
            with db_routing.primary():
                assert db_routing.reads_on_primary()
            assert db_routing.reads_on_primary()
        assert not db_routing.reads_on_primary()
