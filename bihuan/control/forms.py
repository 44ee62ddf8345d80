"""Forms of the control-and-care pages. They parse and check shapes; the rules live in the action functions
(``actions``, ``checkins``, ``services``, ``release``), whose ``ControlError`` names the field to mark."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import CheckInSlot, ServiceKind, TeamSlot

SITE_KINDS = [("home", _("居家")), ("hotel", _("集中隔离点"))]


class OpenCaseForm(forms.Form):
    type_code = forms.ChoiceField(label=_("管控类型"))
    name = forms.CharField(label=_("姓名"), max_length=50, required=False,
                           help_text=_("从居民名册选择时可不填"))
    phone = forms.CharField(label=_("手机号"), max_length=20, required=False)
    start_date = forms.DateField(label=_("开始日期"), widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}))
    site_kind = forms.ChoiceField(label=_("管控地点"), choices=SITE_KINDS, widget=forms.RadioSelect)
    site_address = forms.CharField(label=_("地址或隔离点"), max_length=200, required=False,
                                   help_text=_("居家时可不填，默认为住址"))
    site_room = forms.CharField(label=_("房间号"), max_length=20, required=False)
    reason = forms.CharField(label=_("管控原因"), max_length=300, required=False,
                             widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, types=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["type_code"].choices = [(t.code, t.label) for t in types]
        self.fields["type_code"].widget = forms.RadioSelect(choices=self.fields["type_code"].choices)
        self.initial.setdefault("start_date", timezone.localdate())
        self.initial.setdefault("site_kind", "home")


class CheckInForm(forms.Form):
    slot = forms.ChoiceField(label=_("时段"), choices=CheckInSlot.choices)
    temperature = forms.DecimalField(label=_("体温（°C）"), max_digits=4, decimal_places=1,
                                     min_value=Decimal("34.0"), max_value=Decimal("43.0"),
                                     widget=forms.NumberInput(attrs={"step": "0.1", "inputmode": "decimal",
                                                                     "placeholder": "36.5"}))
    symptoms = forms.MultipleChoiceField(label=_("症状"), required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, symptoms=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["symptoms"].choices = list(symptoms)


class ServiceForm(forms.Form):
    kind = forms.ChoiceField(label=_("需要什么"), choices=ServiceKind.choices, widget=forms.RadioSelect)
    text = forms.CharField(label=_("说明"), max_length=500, required=False,
                           widget=forms.Textarea(attrs={"rows": 2}))


class PeriodForm(forms.Form):
    days_delta = forms.IntegerField(label=_("延长（正数）或缩短（负数）天数"), min_value=-60, max_value=60)
    reason = forms.CharField(label=_("原因"), max_length=300)

    def clean_days_delta(self):
        value = self.cleaned_data["days_delta"]
        if value == 0:
            raise forms.ValidationError(_("不能为 0"))
        return value


class MoveUpForm(forms.Form):
    type_code = forms.ChoiceField(label=_("升级为"))
    reason = forms.CharField(label=_("原因"), max_length=300)
    site_address = forms.CharField(label=_("地址或隔离点"), max_length=200, required=False)
    site_room = forms.CharField(label=_("房间号"), max_length=20, required=False)

    def __init__(self, *args, types=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["type_code"].choices = [(t.code, t.label) for t in types]


class TeamForm(forms.Form):
    slot = forms.ChoiceField(choices=TeamSlot.choices)
    user = forms.IntegerField(required=False)
    name = forms.CharField(max_length=50, required=False)
    phone = forms.CharField(max_length=20, required=False)
