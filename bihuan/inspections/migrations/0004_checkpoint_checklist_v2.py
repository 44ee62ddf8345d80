"""The checkpoint checklist, version 2: "staff on duty" is answered by the duty roster (who is rostered on the post at
the visit against the people it requires). Version 1 stays for the visits that used it; new visits take version 2."""

from django.db import migrations

ITEMS = [
    ("staff_on_duty", "值守人员在岗在位", 3, "critical", "post_staffed"),
    ("vehicles_registered", "过往车辆逐一登记", 2, "major", ""),
    ("thermometer", "配备测温设备且可用", 2, "major", ""),
    ("ledger_complete", "人车排查台账完整", 1, "minor", ""),
]


def add(apps, schema_editor):
    Template = apps.get_model("inspections", "ChecklistTemplate")
    Item = apps.get_model("inspections", "ChecklistItem")
    template, created = Template.objects.get_or_create(target_kind="checkpoint", version=2,
                                                       defaults={"title": "卡点督查清单"})
    if created:
        Item.objects.bulk_create(
            Item(template=template, key=key, text=text, weight=w, severity=sev, prefill=rule, order=i)
            for i, (key, text, w, sev, rule) in enumerate(ITEMS))
    Template.objects.filter(target_kind="checkpoint").exclude(pk=template.pk).update(active=False)


class Migration(migrations.Migration):

    dependencies = [
        ("inspections", "0003_plan_weights_and_post"),
    ]

    operations = [
        migrations.RunPython(add, migrations.RunPython.noop),
    ]
