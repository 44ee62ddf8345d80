"""``generate --reset`` empties the district: after a generated register and its demo day, only configuration is
left (permissions, level names, protocols, control types, checklists and scoring rules), so a second
generation starts from nothing that the first one made."""

from __future__ import annotations

from django.apps import apps

from bihuan.demo.day import build_day
from bihuan.demo.generate import generate_district, reset_register

CONFIGURATION = {"auth.Permission", "contenttypes.ContentType", "register.LevelName", "policy.Protocol",
                 "control.ControlType", "inspections.ChecklistTemplate", "inspections.ChecklistItem",
                 "inspections.RuleSet"}


def test_reset_leaves_only_configuration_after_a_generated_day(db):
    generate_district("tiny", seed=1, out=lambda line: None)
    build_day(seed=1, out=lambda line: None)
    reset_register(out=lambda line: None)
    left = {m._meta.label for m in apps.get_models() if m._base_manager.exists()}
    assert left <= CONFIGURATION, left - CONFIGURATION
