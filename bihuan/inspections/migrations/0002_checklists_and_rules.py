"""The first checklists (one per kind of target) and the first scoring rules, shipped as data. Later versions
are new rows; the values are copied here, not imported, so the migration never changes."""

import datetime as dt

from django.db import migrations

# (key, text, weight, severity, prefill rule)
CHECKLISTS = {
    "home": ("居家隔离户督查清单", [
        ("card_posted", "门口张贴居家隔离告知卡", 2, "major", "measure:card_posted"),
        ("agreement_signed", "签订居家隔离协议书", 2, "major", "measure:agreement_signed"),
        ("sensor_working", "门磁或监控安装并正常工作", 3, "critical", "measure:sensor_installed"),
        ("team_known", "本人知晓“五包一”包保人员及联系方式", 2, "major", "team_complete"),
        ("checkins_recorded", "每日健康打卡按时记录", 2, "major", "checkins_recorded"),
        ("waste_handled", "生活垃圾按规定消杀处理", 1, "minor", ""),
    ]),
    "checkpoint": ("卡点督查清单", [
        ("staff_on_duty", "值守人员在岗在位", 3, "critical", ""),
        ("vehicles_registered", "过往车辆逐一登记", 2, "major", ""),
        ("thermometer", "配备测温设备且可用", 2, "major", ""),
        ("ledger_complete", "人车排查台账完整", 1, "minor", ""),
    ]),
    "community": ("村（社区）督查清单", [
        ("pushes_verified", "当日推送人员按时核查", 3, "critical", "pushes_verified"),
        ("no_blind_spots", "住户全部纳入网格，无盲区", 2, "major", "no_blind_spots"),
        ("elderly_visited", "独居老人一周内走访", 2, "major", "elderly_visited"),
        ("directives_signed", "上级指令按时签收", 2, "major", "directives_signed"),
        ("duty_roster", "值班值守安排公示", 1, "minor", ""),
    ]),
    "sampling_point": ("核酸采样点督查清单", [
        ("one_metre", "排队保持一米间距", 2, "major", ""),
        ("disinfection", "采样台按时消杀并记录", 2, "major", ""),
        ("protective_gear", "采样人员防护到位", 3, "critical", ""),
    ]),
    "compound": ("小区督查清单", [
        ("gate_control", "出入口扫码测温", 3, "critical", ""),
        ("no_blind_spots", "住户全部纳入网格，无盲区", 2, "major", "no_blind_spots"),
        ("disinfection_log", "公共区域消杀记录完整", 1, "minor", ""),
    ]),
}

WEIGHTS = {
    "directive_signed": 10, "directive_relayed": 5, "directive_reported": 10, "households_reached": 15,
    "pushes_verified": 20, "checkins_done": 10, "tests_done": 10, "services_closed": 5,
    "rectified_on_time": 10, "inspection_passed": 5,
}


def add(apps, schema_editor):
    Template = apps.get_model("inspections", "ChecklistTemplate")
    Item = apps.get_model("inspections", "ChecklistItem")
    RuleSet = apps.get_model("inspections", "RuleSet")
    for kind, (title, items) in CHECKLISTS.items():
        template, created = Template.objects.get_or_create(target_kind=kind, version=1, defaults={"title": title})
        if created:
            Item.objects.bulk_create(
                Item(template=template, key=key, text=text, weight=w, severity=sev, prefill=rule, order=i)
                for i, (key, text, w, sev, rule) in enumerate(items))
    RuleSet.objects.get_or_create(version=1, defaults={"effective_from": dt.date(2020, 1, 6), "weights": WEIGHTS,
                                                       "note": "首版考核规则"})


class Migration(migrations.Migration):

    dependencies = [
        ("inspections", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(add, migrations.RunPython.noop),
    ]
