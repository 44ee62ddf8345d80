"""Forms of the directive pages. They parse and check shapes only; the rules live in ``actions``."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from bihuan.register.models import KEY_GROUPS, MAX_LEVEL, Unit, UnitKind, next_path

from .models import Urgency

# "Only villages / only communities / only compounds / only villager groups" (target_kinds).
TARGET_KINDS = [
    (UnitKind.VILLAGE, _("只发到村")),
    (UnitKind.COMMUNITY, _("只发到社区")),
    (UnitKind.COMPOUND, _("只发到小区")),
    (UnitKind.VILLAGER_GROUP, _("只发到村民小组")),
]
# The feedback-form builder accepts English and Chinese type names.
FIELD_TYPE_ALIASES = {
    "number": "number", "数字": "number", "数量": "number",
    "bool": "bool", "yesno": "bool", "是否": "bool",
    "choice": "choice", "选项": "choice", "单选": "choice",
    "text": "text", "文本": "text", "文字": "text",
}
UNIT_CHOICES_LIMIT = 600  # named-unit choices shown on the issue form (levels below the issuer, bounded)


REQUIRED_MARKS = {"必填", "required", "*"}
FEEDBACK_ROWS = 5  # rows of the feedback-form builder on the issue page (more through the text box below them)
FEEDBACK_TYPES = [("number", _("数字")), ("bool", _("是 / 否")), ("choice", _("选项")), ("text", _("文字"))]


def parse_feedback_form(text: str) -> list[dict]:
    """One field per line: ``key|label|type|choice1,choice2|必填`` (label, type, choices and the required mark
    optional); a key ending in ``*`` (``tested*``) is required too."""
    fields = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        required = parts[0].endswith("*") or (len(parts) > 4 and parts[4].lower() in REQUIRED_MARKS)
        key = parts[0].rstrip("*").strip()
        label = parts[1] if len(parts) > 1 and parts[1] else key
        kind_name = (parts[2] if len(parts) > 2 and parts[2] else "text").lower()
        kind = FIELD_TYPE_ALIASES.get(kind_name)
        if kind is None:
            raise forms.ValidationError(
                _("第 %(n)s 行：类型“%(kind)s”无效，可用 number / bool / choice / text"),
                params={"n": n, "kind": kind_name})
        choices = []
        if len(parts) > 3:
            choices = [c.strip() for c in parts[3].replace("，", ",").split(",") if c.strip()]
        fields.append({"key": key, "label": label, "type": kind, "choices": choices, "required": required})
    return fields


def unit_choices(root: Unit) -> list[tuple[int, str]]:
    """Units a directive may be narrowed to: the issuer's subtree, down three levels, bounded."""
    qs = (Unit.objects.filter(path__gt=root.path, path__lt=next_path(root.path),
                              level__lte=min(root.level + 3, MAX_LEVEL))
          .order_by("path").values_list("id", "level", "name")[:UNIT_CHOICES_LIMIT])
    return [(pk, "\u3000" * max(0, level - root.level - 1) + name) for pk, level, name in qs]


class IssueForm(forms.Form):
    title = forms.CharField(label=_("标题"), max_length=200)
    body = forms.CharField(label=_("正文"), widget=forms.Textarea(attrs={"rows": 5}))
    urgency = forms.ChoiceField(label=_("紧急程度"), choices=Urgency.choices, initial=Urgency.NORMAL,
                                widget=forms.RadioSelect)
    target_kinds = forms.MultipleChoiceField(label=_("只发到某类单位"), choices=TARGET_KINDS, required=False,
                                             widget=forms.CheckboxSelectMultiple)
    target_unit_ids = forms.TypedMultipleChoiceField(label=_("指定单位"), coerce=int, required=False,
                                                     widget=forms.SelectMultiple(attrs={"size": 8}))
    household_flag = forms.ChoiceField(label=_("只发到有重点人群的住户"), required=False,
                                       choices=[("", _("全部住户"))] + [(k, v) for k, v in KEY_GROUPS.items()])
    sign_minutes = forms.IntegerField(label=_("每级签收时限（分钟）"), min_value=1, max_value=7 * 24 * 60, initial=30)
    reach_hours = forms.IntegerField(label=_("全部入户时限（小时）"), min_value=1, max_value=30 * 24, initial=24)
    reminder_minutes = forms.IntegerField(label=_("催办间隔（分钟）"), min_value=1, max_value=24 * 60, initial=30)
    reminder_limit = forms.IntegerField(label=_("催办次数"), min_value=0, max_value=20, initial=3)
    is_exercise = forms.BooleanField(label=_("这是一次演练"), required=False)
    feedback_form = forms.CharField(
        label=_("更多反馈项（以文本填写，每行一项：代码|名称|类型|选项）"), required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "tested*|核酸检测人数|number\n"
                                                               "closed*|是否封闭管理|bool\n"
                                                               "level|风险等级|choice|低,中,高\n"
                                                               "notes|情况说明|text"}),
        help_text=_("类型：number 数字、bool 是否、choice 选项（逗号分隔）、text 文本；代码后加 * 为必填项"))

    def __init__(self, *args, root: Unit, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target_unit_ids"].choices = unit_choices(root)
        self.fields["target_unit_ids"].help_text = _("可选多个：电脑上按住 Ctrl（Mac 为 ⌘）点选，手机上直接逐个点选")
        for i in range(FEEDBACK_ROWS):
            self.fields[f"fb_label_{i}"] = forms.CharField(label=_("反馈项名称"), max_length=60, required=False)
            self.fields[f"fb_type_{i}"] = forms.ChoiceField(label=_("类型"), choices=FEEDBACK_TYPES, initial="number",
                                                            required=False)
            self.fields[f"fb_choices_{i}"] = forms.CharField(label=_("选项（逗号分隔，类型为“选项”时填）"),
                                                             max_length=200, required=False)
            self.fields[f"fb_required_{i}"] = forms.BooleanField(label=_("必填"), required=False)

    def feedback_rows(self) -> list[dict]:
        """The builder's rows for the template: (label, type, choices, required) bound fields of each."""
        return [{"n": i + 1, "label": self[f"fb_label_{i}"], "type": self[f"fb_type_{i}"],
                 "choices": self[f"fb_choices_{i}"], "required": self[f"fb_required_{i}"]}
                for i in range(FEEDBACK_ROWS)]

    def clean_feedback_form(self) -> list[dict]:
        return parse_feedback_form(self.cleaned_data.get("feedback_form") or "")

    def clean(self):
        data = super().clean()
        rows = []
        for i in range(FEEDBACK_ROWS):
            label = (data.get(f"fb_label_{i}") or "").strip()
            if not label:
                continue
            kind = data.get(f"fb_type_{i}") or "text"
            choices = [c.strip() for c in (data.get(f"fb_choices_{i}") or "").replace("，", ",").split(",")
                       if c.strip()]
            if kind == "choice" and not choices:
                self.add_error(f"fb_choices_{i}", _("“选项”类型请填写选项，用逗号分隔"))
            rows.append({"key": f"item{i + 1}", "label": label, "type": kind,
                         "choices": choices if kind == "choice" else [], "required": bool(data.get(f"fb_required_{i}"))})
        if "feedback_form" in data:
            taken = {r["key"] for r in rows}
            clash = [f["key"] for f in data["feedback_form"] if f["key"] in taken]
            if clash:
                self.add_error("feedback_form", _("代码重复：%(keys)s") % {"keys": "、".join(clash)})
            data["feedback_form"] = rows + data["feedback_form"]
        return data


class UpdateForm(forms.Form):
    title = forms.CharField(label=_("标题"), max_length=200)
    body = forms.CharField(label=_("正文"), widget=forms.Textarea(attrs={"rows": 4}))
    urgency = forms.ChoiceField(label=_("紧急程度"), choices=Urgency.choices)
