"""The English UI is complete: every main page of every demo login, in English, shows no Chinese text except data
(names, addresses, titles typed by people — every Chinese string stored in the database) and a short allow-list."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from django.apps import apps
from django.db import models
from django.urls import reverse
from django.utils import translation

from bihuan.control.models import ControlCase
from bihuan.directives.models import Directive
from bihuan.pushes.models import PushedPerson
from bihuan.register.models import Staff

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
# The language switch names the other language in itself; glossary terms kept beside their English on purpose.
ALLOWED = {"简体中文", "中文", "三无小区", "包保"}
SKIPPED = {"script", "style", "template", "noscript"}
SHOWN_ATTRS = {"title", "placeholder", "aria-label", "alt"}


def data_strings() -> list[str]:
    """Every Chinese text value stored in the database (the data a page may show), longest first."""
    found: set[str] = set()
    for model in apps.get_models():
        if not model.__module__.startswith("bihuan."):
            continue
        fields = [f.name for f in model._meta.concrete_fields
                  if isinstance(f, models.CharField | models.TextField | models.JSONField) and not f.choices]
        if not fields:
            continue
        for row in model.objects.values_list(*fields):
            for value in row:
                if value is not None and not isinstance(value, str):
                    value = json.dumps(value, ensure_ascii=False)
                    found.update(re.findall(r'"([^"]*[\u3400-\u9fff][^"]*)"', value))
                    continue
                if value and CJK.search(value):
                    found.add(value)
                    found.update(part for part in re.split(r"[\s，、：:；]+", value) if CJK.search(part))
    return sorted(found, key=len, reverse=True)


class _Visible(HTMLParser):
    """The text a person sees (and the attributes read to them), leaving out scripts and the parts marked as a
    Chinese document (``lang="zh-Hans"``: the 日报's title and headers, official documents)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip: tuple[str, int] | None = None  # (tag, depth of that tag) while inside a skipped element

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if self.skip is not None:
            if tag == self.skip[0]:
                self.skip = (tag, self.skip[1] + 1)
            return
        if tag in SKIPPED or (a.get("lang") or "").lower().startswith("zh"):
            self.skip = (tag, 1)
            return
        self.parts += [v for k, v in a.items() if k in SHOWN_ATTRS and v]

    def handle_endtag(self, tag):
        if self.skip is not None and tag == self.skip[0]:
            depth = self.skip[1] - 1
            self.skip = None if depth == 0 else (tag, depth)

    def handle_data(self, data):
        if self.skip is None:
            self.parts.append(data)


def visible_text(page: str) -> str:
    body = page[page.find("<body"):] if "<body" in page else page
    parser = _Visible()
    parser.feed(body)
    return " ".join(parser.parts)


def untranslated(text: str, data: list[str]) -> list[str]:
    for value in data:
        if value in text:
            text = text.replace(value, " ")
    return [w for w in CJK.findall(text) if w not in ALLOWED]


def main_pages(user) -> list[str]:
    staff = user.staff
    unit = staff.unit
    directive = Directive.objects.order_by("pk").first()
    person = PushedPerson.objects.filter(path__startswith=unit.path).order_by("pk").first()
    case = ControlCase.objects.filter(path__startswith=unit.path).order_by("pk").first()
    pages = ["/", reverse("directives:list"), reverse("directives:detail", args=[directive.pk]),
             reverse("pushes:list"), reverse("pushes:dashboard"), reverse("pushes:report"),
             reverse("control:today"), reverse("control:dashboard"), reverse("notify:inbox"), reverse("profile"),
             reverse("search") + "?q=1", reverse("register:unit", args=[unit.pk])]
    if person is not None:
        pages.append(reverse("pushes:person", args=[person.pk]))
    if case is not None:
        pages.append(reverse("control:case", args=[case.pk]))
    return pages


def test_the_main_pages_of_every_demo_login_have_no_untranslated_text_in_english(client, demo_day):
    data = data_strings()
    logins = []
    for level in range(1, 7):
        s = Staff.objects.filter(unit__level=level).order_by("unit__path", "id").first()
        if s is not None:
            logins.append(s)
    Staff.objects.filter(pk__in=[s.pk for s in logins]).update(language="en")
    problems: dict[str, list[str]] = {}
    seen = 0
    for s in logins:
        client.force_login(s.user)
        for url in main_pages(s.user):
            with translation.override("zh-hans"):  # each request activates English; nothing leaks to other tests
                response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
            if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
                continue
            seen += 1
            left = untranslated(visible_text(response.content.decode()), data)
            if left:
                problems[f"{s.user.username} {url}"] = sorted(set(left))[:15]
    assert seen >= 40
    assert problems == {}, "\n".join(f"{k}: {v}" for k, v in problems.items())
