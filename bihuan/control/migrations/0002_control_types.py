"""The three control types the district works with, shipped as data (staff may edit them or add more):
centralized quarantine (集中隔离), home isolation (居家隔离) and home health monitoring (居家健康监测), ranked
so that a case moves up only to a stricter one, each with its measures checklist. The values are copied here,
not imported, so the migration never changes. Their codes are the ``pushes.Measure`` values of the same
measures, so a verification's confirmed measure names its type."""

from django.db import migrations

TYPES = [
    {
        "code": "centralized_quarantine",
        "name_zh": "集中隔离",
        "name_en": "Centralized quarantine",
        "rank": 3,
        "checkins_per_day": 2,
        "at_home": False,
        "measures": [
            {"key": "transferred", "label": "闭环转运至隔离点", "photo": False},
            {"key": "agreement_signed", "label": "签订集中隔离告知书", "photo": True},
            {"key": "family_informed", "label": "告知家属及同住人员", "photo": False},
        ],
    },
    {
        "code": "home_isolation",
        "name_zh": "居家隔离",
        "name_en": "Home isolation",
        "rank": 2,
        "checkins_per_day": 2,
        "at_home": True,
        "measures": [
            {"key": "card_posted", "label": "张贴居家隔离告知卡", "photo": False},
            {"key": "agreement_signed", "label": "签订居家隔离协议书", "photo": True},
            {"key": "sensor_installed", "label": "安装门磁或监控", "photo": False},
            {"key": "household_briefed", "label": "告知同住人员防护要求", "photo": False},
        ],
    },
    {
        "code": "home_monitoring",
        "name_zh": "居家健康监测",
        "name_en": "Home health monitoring",
        "rank": 1,
        "checkins_per_day": 2,
        "at_home": True,
        "measures": [
            {"key": "agreement_signed", "label": "签订居家健康监测承诺书", "photo": True},
            {"key": "household_briefed", "label": "告知健康监测要求", "photo": False},
        ],
    },
]


def add_types(apps, schema_editor):
    ControlType = apps.get_model("control", "ControlType")
    for t in TYPES:
        ControlType.objects.get_or_create(code=t["code"], defaults={k: v for k, v in t.items() if k != "code"})


def remove_types(apps, schema_editor):
    ControlType = apps.get_model("control", "ControlType")
    ControlType.objects.filter(code__in=[t["code"] for t in TYPES], cases__isnull=True).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("control", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(add_types, remove_types),
    ]
