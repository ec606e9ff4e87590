"""A gateway attempt names its subject generically: the `payment_id` column becomes `subject_id`.

The column is renamed in place (its values, `pay_…` ids, are kept), its foreign key to payments is
dropped (an attempt may be for a deposit transaction as well), and it is indexed with created_at.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("gateways", "0001_initial"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="gatewayattempt", name="gateway_attempt_payment_idx"),
        migrations.AlterField(
            model_name="gatewayattempt",
            name="payment",
            field=models.CharField(max_length=40, db_column="payment_id"),
        ),
        migrations.RenameField(model_name="gatewayattempt", old_name="payment", new_name="subject_id"),
        migrations.AlterField(
            model_name="gatewayattempt",
            name="subject_id",
            field=models.CharField(help_text="The payment's or deposit transaction's id.", max_length=40),
        ),
        migrations.AddIndex(
            model_name="gatewayattempt",
            index=models.Index(fields=["subject_id", "created_at"], name="gateway_attempt_subject_idx"),
        ),
    ]
