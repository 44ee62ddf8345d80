"""The policy models move here from ``pushes``: state only, the tables (``pushes_riskarea``,
``pushes_protocol``) stay as they are."""

from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("pushes", "0004_one_phone_hash_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="Protocol",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("name", models.CharField(max_length=100)),
                        ("effective_from", models.DateField()),
                        ("rules", models.JSONField(default=list)),
                        ("note", models.TextField(blank=True)),
                    ],
                    options={"ordering": ["-effective_from"], "db_table": "pushes_protocol"},
                ),
                migrations.CreateModel(
                    name="RiskArea",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("level", models.CharField(choices=[("high", "高风险"), ("medium", "中风险"),
                                                            ("low", "低风险")], max_length=8)),
                        ("area_code", models.CharField(blank=True, max_length=12)),
                        ("name", models.CharField(max_length=200)),
                        ("effective_from", models.DateField()),
                        ("effective_to", models.DateField(blank=True, null=True)),
                        ("list_name", models.CharField(blank=True, max_length=100)),
                    ],
                    options={
                        "db_table": "pushes_riskarea",
                        "indexes": [models.Index(fields=["effective_from", "effective_to"],
                                                 name="pushes_risk_effecti_2175ca_idx")],
                    },
                ),
            ],
        ),
    ]
