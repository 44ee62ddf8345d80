# The pushed people's lookup hashes are indexed once: PostgreSQL loses the second ("_like",
# varchar_pattern_ops) index Django gave each of them, which an exact-match hash never uses and every
# imported person paid for. The columns are unchanged; SQLite has no such index (nothing to do there).

import bihuan.register.models
from django.db import migrations

COLUMNS = ("id_hash", "phone_hash")


def _like_index(schema_editor, table: str, column: str) -> str:
    return schema_editor._create_index_name(table, [column], suffix="_like")


def drop_like_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = apps.get_model("pushes", "PushedPerson")._meta.db_table
    for column in COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(_like_index(schema_editor, table, column))}")


def create_like_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = apps.get_model("pushes", "PushedPerson")._meta.db_table
    for column in COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {schema_editor.quote_name(_like_index(schema_editor, table, column))} "
            f"ON {schema_editor.quote_name(table)} ({schema_editor.quote_name(column)} varchar_pattern_ops)")


class Migration(migrations.Migration):

    dependencies = [
        ('pushes', '0008_verification_amendments'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='pushedperson',
                    name='id_hash',
                    field=bihuan.register.models.LookupHashField(blank=True, db_index=True, max_length=40),
                ),
                migrations.AlterField(
                    model_name='pushedperson',
                    name='phone_hash',
                    field=bihuan.register.models.LookupHashField(blank=True, db_index=True, max_length=40),
                ),
            ],
            database_operations=[migrations.RunPython(drop_like_indexes, create_like_indexes)],
        ),
    ]
