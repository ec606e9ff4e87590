"""GatewayAttempt, SimulatedCharge and SimulatedChargeOperation now belong to the gateways app.

State only: their tables stay where they are (gateways 0001 takes them over under the same names).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0004_dispute_and_gateway_reference_index"),
        ("gateways", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="GatewayAttempt"),
                migrations.DeleteModel(name="SimulatedChargeOperation"),
                migrations.DeleteModel(name="SimulatedCharge"),
            ],
        ),
    ]
