import pytest
from django.urls import reverse

from apps.accounts.models import User
from apps.audit.chain import CHAINED_FIELDS
from apps.audit.models import AuditLog
from apps.audit.tests.factories import AuditRecordFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(User.objects.create_superuser("boss@example.com", "correct-horse-battery"))
    return client


def test_staff_can_find_an_entitys_records(staff_client):
    AuditRecordFactory(entity_type="payment", entity_id="pay_wanted", action="payment.capture")
    AuditRecordFactory(entity_type="payment", entity_id="pay_other", action="payment.refund")

    response = staff_client.get(reverse("admin:audit_auditlog_changelist"), {"q": "pay_wanted"})

    assert response.status_code == 200
    assert b"pay_wanted" in response.content
    assert b"pay_other" not in response.content


def test_staff_can_filter_by_action_and_actor_type(staff_client):
    AuditRecordFactory(entity_id="pay_captured", action="payment.capture")
    AuditRecordFactory(entity_id="pay_refunded", action="payment.refund")

    response = staff_client.get(
        reverse("admin:audit_auditlog_changelist"), {"action": "payment.refund", "actor_type": "system"}
    )

    assert response.status_code == 200
    assert b"pay_refunded" in response.content
    assert b"pay_captured" not in response.content


def test_a_record_can_be_read_but_not_added_changed_or_deleted_even_by_a_superuser(staff_client):
    row = AuditRecordFactory(action="payment.capture", after={"status": "succeeded"})
    change_url = reverse("admin:audit_auditlog_change", args=[row.pk])

    assert staff_client.get(change_url).status_code == 200
    assert staff_client.post(change_url, {"action": "payment.void"}).status_code == 403
    assert staff_client.get(reverse("admin:audit_auditlog_add")).status_code == 403
    assert (
        staff_client.post(reverse("admin:audit_auditlog_delete", args=[row.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert AuditLog.objects.get(pk=row.pk).action == "payment.capture"


def test_a_records_page_shows_everything_its_hash_covers(staff_client):
    AuditRecordFactory(action="payment.capture")
    row = AuditRecordFactory(action="payment.refund", after={"status": "refunded"})

    response = staff_client.get(reverse("admin:audit_auditlog_change", args=[row.pk]))

    html = response.content.decode()
    for name in (*CHAINED_FIELDS, "chain", "hash"):
        assert f"field-{name}" in html, name
    assert row.prev_hash in html
    assert row.hash in html
