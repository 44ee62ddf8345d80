"""Forms of the notification settings and robot pages (parsing only; the actions validate and write)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from . import events
from .models import RobotKind


class PreferenceForm(forms.Form):
    email = forms.BooleanField(label=_("邮件"), required=False)
    sms = forms.BooleanField(label=_("短信"), required=False)
    quiet_start = forms.TimeField(label=_("免打扰开始"), required=False,
                                  widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    quiet_end = forms.TimeField(label=_("免打扰结束"), required=False,
                                widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))


class RobotForm(forms.Form):
    kind = forms.ChoiceField(label=_("类型"), choices=RobotKind.choices)
    name = forms.CharField(label=_("名称"), max_length=100)
    webhook_url = forms.CharField(label=_("Webhook 地址"), max_length=1000, required=False,
                                  widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}))
    secret = forms.CharField(label=_("加签密钥（仅钉钉）"), max_length=200, required=False,
                             widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    clear_secret = forms.BooleanField(label=_("移除加签密钥"), required=False)
    events = forms.MultipleChoiceField(label=_("推送到群的事件"), required=False, choices=events.CHOICES,
                                       widget=forms.CheckboxSelectMultiple,
                                       help_text=_("都不选即推送全部事件"))
