"""The gateway tables move here from the payments app, in state only: nothing is copied or dropped.

The tables keep their payments_* names. GatewayAttempt arrives as it was (a foreign key to
Payment); 0002 turns that into the generic `subject_id`, keeping every row.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import apps.core.ids


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("payments", "0004_dispute_and_gateway_reference_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="SimulatedCharge",
                    fields=[
                        (
                            "reference",
                            apps.core.ids.PrefixedIdField(prefix="sim_ch", primary_key=True, serialize=False),
                        ),
                        ("idempotency_key", models.CharField(max_length=255, unique=True)),
                        ("token", models.CharField(max_length=255)),
                        ("amount", models.BigIntegerField()),
                        ("amount_captured", models.BigIntegerField(default=0)),
                        ("amount_refunded", models.BigIntegerField(default=0)),
                        ("currency", models.CharField(max_length=3)),
                        ("capture_requested", models.BooleanField(default=True)),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("pending", "Pending (not charged: transient errors so far)"),
                                    ("authorized", "Authorized"),
                                    ("captured", "Captured"),
                                    ("failed", "Failed"),
                                    ("voided", "Voided"),
                                    ("refunded", "Refunded"),
                                ],
                                default="pending",
                                max_length=16,
                            ),
                        ),
                        ("failure_code", models.CharField(blank=True, default="", max_length=64)),
                        (
                            "attempts",
                            models.PositiveIntegerField(
                                default=0, help_text="Authorize calls made with this key."
                            ),
                        ),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                    ],
                    options={
                        "db_table": "payments_simulatedcharge",
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("amount__gt", 0)), name="sim_charge_amount_positive"
                            ),
                            models.CheckConstraint(
                                condition=models.Q(
                                    ("amount_captured__gte", 0), ("amount_captured__lte", models.F("amount"))
                                ),
                                name="sim_charge_captured_within_amount",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(
                                    ("amount_refunded__gte", 0),
                                    ("amount_refunded__lte", models.F("amount_captured")),
                                ),
                                name="sim_charge_refunded_within_captured",
                            ),
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="SimulatedChargeOperation",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("idempotency_key", models.CharField(max_length=255, unique=True)),
                        (
                            "kind",
                            models.CharField(
                                choices=[("capture", "Capture"), ("void", "Void"), ("refund", "Refund")],
                                max_length=16,
                            ),
                        ),
                        ("amount", models.BigIntegerField()),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "charge",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="operations",
                                to="gateways.simulatedcharge",
                            ),
                        ),
                    ],
                    options={"db_table": "payments_simulatedchargeoperation"},
                ),
                migrations.CreateModel(
                    name="GatewayAttempt",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("operation", models.CharField(max_length=16)),
                        ("idempotency_key", models.CharField(max_length=80)),
                        ("outcome", models.CharField(max_length=20)),
                        ("error_code", models.CharField(blank=True, default="", max_length=64)),
                        ("latency_ms", models.PositiveIntegerField(default=0)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "payment",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="gateway_attempts",
                                to="payments.payment",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "payments_gatewayattempt",
                        "indexes": [
                            models.Index(fields=["payment", "created_at"], name="gateway_attempt_payment_idx")
                        ],
                    },
                ),
            ],
        ),
    ]
