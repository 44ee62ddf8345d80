"""The two protocol versions the district worked with in 2021–22, shipped as data (the command office adds
later versions in the UI). The rules are copied here, not imported, so the migration never changes.

- 第八版 (from 2021-05-11), the "14 + 7" rules: from a high-risk area within 14 days → 14 days of centralized
  quarantine with tests on days 1, 4, 7 and 14, then 7 days of home health monitoring with tests on days 2
  and 7; from a medium-risk area → 14 days of home isolation, tests on days 1, 4, 7 and 14. No rule for
  low-risk areas (no control needed).
- 第九版 (from 2022-06-28): high → 7 days of centralized quarantine, tests on days 1, 2, 3, 5 and 7; medium →
  7 days of home isolation, tests on days 1, 4 and 7; low → two tests within three days (3天2检).
"""

import datetime as dt

from django.db import migrations

PROTOCOLS = [
    {
        "name": "第八版",
        "effective_from": dt.date(2021, 5, 11),
        "note": "新型冠状病毒肺炎防控方案（第八版）：“14+7” —— 14天集中隔离医学观察 + 7天居家健康监测。",
        "rules": [
            {"risk": "high", "within_days": 14, "measure": "centralized_quarantine", "days": 14,
             "tests": [1, 4, 7, 14], "then": [{"measure": "home_monitoring", "days": 7, "tests": [2, 7]}]},
            {"risk": "medium", "within_days": 14, "measure": "home_isolation", "days": 14,
             "tests": [1, 4, 7, 14], "then": []},
        ],
    },
    {
        "name": "第九版",
        "effective_from": dt.date(2022, 6, 28),
        "note": "新型冠状病毒肺炎防控方案（第九版），2022年6月：高风险区7天集中隔离，中风险区7天居家隔离，"
                "低风险区3天2检。",
        "rules": [
            {"risk": "high", "within_days": 7, "measure": "centralized_quarantine", "days": 7,
             "tests": [1, 2, 3, 5, 7], "then": []},
            {"risk": "medium", "within_days": 7, "measure": "home_isolation", "days": 7, "tests": [1, 4, 7],
             "then": []},
            {"risk": "low", "within_days": 7, "measure": "tests_only", "days": 3, "tests": [1, 3], "then": []},
        ],
    },
]


def add_protocols(apps, schema_editor):
    Protocol = apps.get_model("pushes", "Protocol")
    for p in PROTOCOLS:
        Protocol.objects.get_or_create(name=p["name"], effective_from=p["effective_from"],
                                       defaults={"rules": p["rules"], "note": p["note"]})


def remove_protocols(apps, schema_editor):
    Protocol = apps.get_model("pushes", "Protocol")
    for p in PROTOCOLS:
        Protocol.objects.filter(name=p["name"], effective_from=p["effective_from"]).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("pushes", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(add_protocols, remove_protocols),
    ]
