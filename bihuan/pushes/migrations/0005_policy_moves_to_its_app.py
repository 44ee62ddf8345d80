"""Risk areas and protocol editions now belong to ``bihuan.policy`` (state only: the tables keep their names,
no data moves)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("pushes", "0004_one_phone_hash_index"),
        ("policy", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="RiskArea"),
                migrations.DeleteModel(name="Protocol"),
            ],
        ),
    ]
