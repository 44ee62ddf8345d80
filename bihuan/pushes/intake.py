"""People found by other sources than a pushed file — a checkpoint (卡口), a self-report (报备), a household
screening (排查) — enter the same pipeline as big-data pushes: ``push_findings``.

Each finding is a normalised ``Row`` (the same fields as a pushed list's row) and the record it came from. In
one transaction (serialised with the imports of files, so a file and a checkpoint naming the same person at the
same moment still make one person):

- findings whose record is already evidence of someone are skipped (a repeated call changes nothing);
- the rest are de-duplicated exactly as the rows of a file (``dedupe``: ID hash, phone hash and name, name and
  birth date; within the window): the same person pushed by big data, registered at a checkpoint and
  self-reported on the same day is **one** pushed person with one verification loop and three pieces of
  evidence;
- new people are routed and their verification loops opened (``routing.route_people``); a person already there
  gets the source added and a note on their verification loop ("also found at …");
- every finding becomes an ``Evidence`` row.

The people are anchored to a daily batch per (unit, source) that holds no file (``file_sha256`` names the day):
the batch lists, the daily report and the transfer rules treat them like any other push.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from bihuan.core import audit
from bihuan.core.bulk import reserve_ids, update_rows
from bihuan.loops import engine
from bihuan.register.models import Unit

from . import dedupe
from .importing import _Run, _serialise_chunks
from .models import BatchState, Evidence, PushBatch, PushedPerson, Verification
from .normalize import Row

# The sources (PushedPerson.sources, Evidence.source) of the other ways people are found.
CHECKPOINT, SELF_REPORT, SCREENING = "卡口", "报备", "排查"


@dataclasses.dataclass
class Finding:
    """One person found: the normalised row, the record it came from, what to say about it."""

    row: Row
    ref_type: str
    ref_id: int
    summary: str = ""
    reasons: str = ""
    unit_id: int | None = None


def day_batch(unit: Unit, source: str, day: dt.date, acting_user=None) -> PushBatch:
    """The batch of ``source`` at ``unit`` for ``day`` (made on first use; no file behind it)."""
    sha = hashlib.sha256(f"intake|{source}|{day.isoformat()}".encode()).hexdigest()
    batch = PushBatch.objects.filter(unit=unit, source=source, file_sha256=sha).first()
    if batch is not None:
        return batch
    try:
        with transaction.atomic():
            return PushBatch.objects.create(
                unit=unit, source=source, file_sha256=sha, file_name=f"{source} {day.isoformat()}", file_data=b"",
                uploaded_by=acting_user, state=BatchState.DONE)
    except IntegrityError:
        return PushBatch.objects.get(unit=unit, source=source, file_sha256=sha)


def push_findings(findings: list[Finding], *, source: str, unit: Unit, acting_user=None,
                  at: dt.datetime | None = None) -> list[PushedPerson | None]:
    """The pushed person of each finding (None for a row that cannot be pushed: it was rejected). See the module
    docstring. Call inside the caller's transaction or alone."""
    at = at or timezone.now()
    out: list[PushedPerson | None] = [None] * len(findings)
    if not findings:
        return out
    with transaction.atomic():
        _serialise_chunks()
        known = {(t, r): pid for t, r, pid in Evidence.objects.filter(
            ref_type__in={f.ref_type for f in findings}, ref_id__in=[f.ref_id for f in findings])
            .values_list("ref_type", "ref_id", "person_id")}
        known_people = {p.pk: p for p in PushedPerson.objects.filter(pk__in=set(known.values()))} if known else {}
        todo = []
        for i, f in enumerate(findings):
            if known.get((f.ref_type, f.ref_id)) in known_people:
                out[i] = known_people[known[(f.ref_type, f.ref_id)]]
            elif f.row.rejected is None:
                todo.append(i)
        if not todo:
            return out
        batch = day_batch(unit, source, timezone.localdate(at), acting_user)
        index = dedupe.Index()
        index.load((findings[i].row for i in todo), since=dedupe.window_start(at))
        created: list[PushedPerson] = []
        changed: dict[int, PushedPerson] = {}
        for i in todo:
            row = findings[i].row
            match = index.find(row)
            if match is None:
                person = dedupe.new_person(row, batch=batch, source=source, pushed_at=at)
                created.append(person)
            else:
                person = match.person
                dedupe.merge_into(person, row, source=source, pushed_at=at)
                if person.pk:
                    if person.pk not in changed:
                        person.times_pushed += 1
                    changed[person.pk] = person
            index.add(person)
            out[i] = person
        _Run._match_residents([*created, *changed.values()])
        for person, pk in zip(created, reserve_ids(PushedPerson, len(created)), strict=True):
            person.id = pk
        dedupe.write_new(created)
        written = PushedPerson.objects.in_bulk([p.id for p in created])  # model rows for what follows
        out = [written.get(p.pk, p) if p is not None else None for p in out]
        if changed:
            update_rows(PushedPerson, list(changed.values()), dedupe.UPDATED_FIELDS)
        Evidence.objects.bulk_create(
            [Evidence(person=out[i], source=source, ref_type=findings[i].ref_type, ref_id=findings[i].ref_id,
                      summary=findings[i].summary[:300], reasons=findings[i].reasons[:300],
                      unit_id=findings[i].unit_id, found_at=at) for i in todo],
            ignore_conflicts=True)
        PushBatch.objects.filter(pk=batch.pk).update(
            rows_total=F("rows_total") + len(todo), rows_done=F("rows_done") + len(todo),
            imported=F("imported") + len(created), merged=F("merged") + len(todo) - len(created))
        if changed:
            loops = dict(Verification.objects.filter(person_id__in=list(changed), loop__isnull=False)
                         .values_list("person_id", "loop_id"))
            for i in todo:
                loop_id = loops.get(out[i].pk)
                if loop_id:
                    engine.note(loop_id, actor=acting_user, action="evidence",
                                note=f"{source}：{findings[i].summary}"[:300])
        if created:
            from .routing import route_people

            route_people([p.pk for p in created], acting_user=acting_user)
        audit.record(actor=acting_user, action="push.intake", target=batch,
                     changes={"source": source, "findings": len(todo), "new": len(created),
                              "joined": len(todo) - len(created)})
    return out
