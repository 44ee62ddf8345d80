"""The checklists and scoring rules Bihuan ships (written by migrations 0002 and 0004). A database emptied by hand
— or by a test's flush — loses them with the rest; ``ensure`` puts them back (idempotent: get_or_create)."""

from __future__ import annotations

import importlib

from django.apps import apps

from .models import ChecklistTemplate, RuleSet

MIGRATIONS = ("0002_checklists_and_rules", "0004_checkpoint_checklist_v2")


def ensure() -> None:
    if ChecklistTemplate.objects.exists() and RuleSet.objects.exists():
        return
    for name in MIGRATIONS:
        importlib.import_module(f"bihuan.inspections.migrations.{name}").add(apps, None)
