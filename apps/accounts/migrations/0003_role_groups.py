from django.db import migrations

ROLES = ("customer", "reviewer", "admin")


def create_role_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_sessions_and_api_keys"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    # Reversing leaves the groups: users may already belong to them.
    operations = [migrations.RunPython(create_role_groups, migrations.RunPython.noop)]
