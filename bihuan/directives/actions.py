"""All writes of directives: issue, sign, relay, report, mark households, resident confirmation, update,
cancel, close. Each checks permission and scope through register.access and writes its audit row."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from bihuan.core import audit
from bihuan.core.errors import Refused
from bihuan.core.roles import Perm
from bihuan.loops import engine
from bihuan.loops.models import OPEN_STATES, Loop, LoopState
from bihuan.notify.outbox import notify_user
from bihuan.register.access import access_unit, require, scope_of, scoped
from bihuan.register.models import KEY_GROUPS, MAX_LEVEL, Staff, Unit, UnitKind, subtree_q

from . import fanout, taps
from .models import RECEIPT, Directive, DirectiveStatus, FanoutState, Reach, ReachMethod, ReachStatus, Urgency

FIELD_TYPES = {"number", "bool", "choice", "text"}


class DirectiveError(Refused):
    """Refused; the message starts with the field's name."""


def _validate_form(form: list[dict]) -> list[dict]:
    clean, keys = [], set()
    for i, field in enumerate(form or []):
        key, kind = str(field.get("key", "")).strip(), field.get("type")
        if not key or key in keys:
            raise DirectiveError(f"feedback_form[{i}].key: missing or repeated")
        if kind not in FIELD_TYPES:
            raise DirectiveError(f"feedback_form[{i}].type: one of {sorted(FIELD_TYPES)}")
        choices = [str(c) for c in field.get("choices", [])]
        if kind == "choice" and not choices:
            raise DirectiveError(f"feedback_form[{i}].choices: a choice field needs choices")
        keys.add(key)
        clean.append({"key": key, "label": str(field.get("label") or key), "type": kind, "choices": choices})
    return clean


def do_issue_directive(*, title: str, body: str, acting_user, urgency: str = Urgency.NORMAL,
                       scope_unit: Unit | None = None, target_kinds: list[str] | None = None,
                       target_unit_ids: list[int] | None = None, household_flag: str = "",
                       sign_minutes: int = 30, reach_hours: int = 24, reminder_minutes: int = 30,
                       reminder_limit: int = 3, feedback_form: list[dict] | None = None,
                       is_exercise: bool = False) -> Directive:
    """Issue from the user's own unit to (part of) its subtree; a department issues to any part of the
    district. Receipts open at once; households are written inline for small scopes, else by the worker."""
    scope = require(acting_user, Perm.ISSUE_DIRECTIVE)
    issuer = scope.unit
    if issuer.level >= MAX_LEVEL:
        raise DirectiveError("issuer: grids do not issue directives")
    if not title.strip() or not body.strip():
        raise DirectiveError("title: a directive needs a title and a text")
    if urgency not in Urgency.values:
        raise DirectiveError(f"urgency: one of {Urgency.values}")
    if household_flag and household_flag not in KEY_GROUPS:
        raise DirectiveError(f"household_flag: one of {list(KEY_GROUPS)}")
    scope_unit = access_unit(acting_user, scope_unit.pk) if scope_unit else scope.root
    if issuer.kind == UnitKind.COMMAND_OFFICE and scope_unit == issuer.parent:
        scope_unit = issuer  # the office's townships hang under it
    form = _validate_form(feedback_form or [])
    with transaction.atomic():
        directive = Directive.objects.create(
            issuer_unit=issuer, issuer_user=acting_user, scope_unit=scope_unit, title=title.strip()[:200],
            body=body.strip(), urgency=urgency, is_exercise=is_exercise, target_kinds=target_kinds or [],
            target_unit_ids=target_unit_ids or [], household_flag=household_flag, sign_minutes=sign_minutes,
            reach_hours=reach_hours, reminder_minutes=reminder_minutes, reminder_limit=reminder_limit,
            feedback_form=form, issued_at=timezone.now(),
        )
        paths = fanout.target_paths(directive)
        receipts = fanout.open_receipts(directive, paths, acting_user=acting_user)
        total = fanout.count_households(directive, paths)
        directive.fanout_total = total
        directive.save(update_fields=["fanout_total"])
        audit.record(actor=acting_user, action="directive.issue", target=directive,
                     changes={"title": directive.title, "scope": scope_unit.pk, "receipts": receipts,
                              "households": total, "exercise": is_exercise})
    if total <= fanout.INLINE_LIMIT:
        fanout.run_fanout(directive)
        directive.refresh_from_db()
    return directive


def _receipt_for(acting_user, loop_id: int) -> Loop:
    loop = scoped(acting_user, Loop.objects.filter(kind=RECEIPT)).filter(pk=loop_id).first()
    if loop is None:
        from django.http import Http404

        raise Http404("no such receipt in your part of the district")
    return loop


def do_sign_receipt(*, loop_id: int, acting_user) -> Loop:
    """签收 for one's unit (or, recorded as such, for a unit below one's own)."""
    require(acting_user, Perm.SIGN_RECEIPT)
    with transaction.atomic():
        loop = _receipt_for(acting_user, loop_id)
        if loop.state != LoopState.ISSUED:
            return loop
        return engine.transition(loop, LoopState.ACKNOWLEDGED, actor=acting_user)


def do_relay_receipt(*, loop_id: int, acting_user) -> Loop:
    """下达: passed on to the units below (whose receipts already wait for them)."""
    require(acting_user, Perm.SIGN_RECEIPT)
    with transaction.atomic():
        loop = _receipt_for(acting_user, loop_id)
        if loop.state in (LoopState.ISSUED, LoopState.ACKNOWLEDGED):
            loop = engine.transition(loop, LoopState.IN_PROGRESS, actor=acting_user, note="relayed")
        return loop


def clean_answers(form: list[dict], answers: dict) -> dict:
    out = {}
    for field in form:
        key, value = field["key"], answers.get(field["key"])
        if value in (None, ""):
            continue
        if field["type"] == "number":
            try:
                out[key] = float(value) if "." in str(value) else int(value)
            except (TypeError, ValueError):
                raise DirectiveError(f"{key}: must be a number") from None
        elif field["type"] == "bool":
            out[key] = value in (True, "true", "1", "yes", "on", "是")
        elif field["type"] == "choice":
            if str(value) not in field["choices"]:
                raise DirectiveError(f"{key}: must be one of {field['choices']}")
            out[key] = str(value)
        else:
            out[key] = str(value)[:2000]
    return out


def do_report_receipt(*, loop_id: int, answers: dict, acting_user, note: str = "") -> Loop:
    """反馈: the unit's answers to the directive's feedback form."""
    require(acting_user, Perm.SIGN_RECEIPT)
    with transaction.atomic():
        loop = _receipt_for(acting_user, loop_id)
        directive = Directive.objects.get(pk=loop.subject_id)
        clean = clean_answers(directive.feedback_form, answers)
        return engine.transition(loop, LoopState.REPORTED, actor=acting_user, note=note, data={"answers": clean})


def do_mark_households(*, directive: Directive, household_ids: list[int], status: str, acting_user,
                       method: str = "", reason: str = "") -> int:
    """Mark households of one's own part reached / unreachable, or back to pending (undo). Set-based."""
    require(acting_user, Perm.MARK_REACH)
    if status not in ReachStatus.values:
        raise DirectiveError(f"status: one of {ReachStatus.values}")
    if status == ReachStatus.REACHED and method not in ReachMethod.values:
        raise DirectiveError(f"method: one of {ReachMethod.values}")
    if status == ReachStatus.UNREACHABLE and not reason.strip():
        raise DirectiveError("reason: say why the household cannot be reached")
    if directive.status != DirectiveStatus.ISSUED:
        raise DirectiveError("directive: it is closed or cancelled")
    now = timezone.now()
    with transaction.atomic():
        rows = scoped(acting_user, Reach.objects.filter(directive=directive, household_id__in=household_ids))
        if status == ReachStatus.PENDING:
            changed = rows.exclude(status=ReachStatus.PENDING).update(
                status=status, method="", reason="", marked_by=acting_user, marked_at=now)
        else:
            changed = rows.exclude(status=status, method=method).update(
                status=status, method=method if status == ReachStatus.REACHED else "", reason=reason.strip()[:200],
                marked_by=acting_user, marked_at=now)
        audit.record(actor=acting_user, action="directive.mark", target=directive,
                     changes={"status": status, "method": method, "households": len(household_ids),
                              "changed": changed})
    return changed


def do_confirm_by_link(*, reach_id: int) -> bool:
    """A resident's one tap: True if it marked the household reached. Idempotent and safe under concurrent
    taps; the SQL lives in ``taps``, the hot path the resident's page calls directly."""
    page = taps.tap(reach_id, confirm=True)
    return page is not None and page.just_confirmed


def _check_issuer(acting_user, directive: Directive) -> None:
    scope = require(acting_user, Perm.ISSUE_DIRECTIVE)
    # The user's own unit, not their scope's root: a department sees the whole district but may change
    # only its own directives.
    if not directive.issuer_unit.path.startswith(scope.unit.path):
        raise PermissionDenied("only the issuing unit (or one above it) may change a directive")


def _tell_those_already_reached(directive: Directive, key: str, subject: str, body: str) -> int:
    """Staff of units that signed, and the responsible people of grids with reached households."""
    signed = Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk, acknowledged_at__isnull=False)
    reached = Reach.objects.filter(directive=directive, status=ReachStatus.REACHED)
    staff = Staff.objects.filter(Q(unit_id__in=signed.values("owner_unit_id")) |
                                 Q(unit_id__in=reached.values("unit_id"))).select_related("user")
    n = 0
    for s in staff:
        notify_user(s.user, key=f"{key}:{s.user_id}", subject=subject, body=body)
        n += 1
    return n


def do_update_directive(*, directive: Directive, acting_user, title: str | None = None, body: str | None = None,
                        urgency: str | None = None) -> Directive:
    _check_issuer(acting_user, directive)
    if directive.status != DirectiveStatus.ISSUED:
        raise DirectiveError("directive: it is closed or cancelled")
    if urgency and urgency not in Urgency.values:
        raise DirectiveError(f"urgency: one of {Urgency.values}")
    with transaction.atomic():
        before = {"title": directive.title, "body": directive.body, "urgency": directive.urgency}
        directive.title = (title or directive.title).strip()[:200]
        directive.body = (body or directive.body).strip()
        directive.urgency = urgency or directive.urgency
        directive.version += 1
        directive.updated_at = timezone.now()
        directive.save()
        told = _tell_those_already_reached(
            directive, f"directive:{directive.pk}:v{directive.version}",
            f"指令更新（第 {directive.version} 版）：{directive.title}", directive.body)
        audit.record(actor=acting_user, action="directive.update", target=directive,
                     changes={"before": before, "version": directive.version, "notified": told})
    return directive


def do_cancel_directive(*, directive: Directive, reason: str, acting_user) -> Directive:
    _check_issuer(acting_user, directive)
    if directive.status != DirectiveStatus.ISSUED:
        raise DirectiveError("directive: it is already closed or cancelled")
    if not reason.strip():
        raise DirectiveError("reason: say why the directive is cancelled")
    with transaction.atomic():
        directive.status, directive.closed_at, directive.close_reason = (
            DirectiveStatus.CANCELLED, timezone.now(), reason.strip())
        directive.save()
        engine.bulk_transition(Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk), LoopState.CANCELLED,
                               actor=acting_user, note=reason)
        told = _tell_those_already_reached(directive, f"directive:{directive.pk}:cancel",
                                           f"指令撤销：{directive.title}", reason)
        audit.record(actor=acting_user, action="directive.cancel", target=directive,
                     changes={"reason": reason, "notified": told})
    return directive


def do_close_directive(*, directive: Directive, acting_user, reason: str = "") -> Directive:
    """销号. With every household reached (or unreachable with a reason) no reason is needed; early needs one."""
    _check_issuer(acting_user, directive)
    if directive.status != DirectiveStatus.ISSUED:
        raise DirectiveError("directive: it is already closed or cancelled")
    pending = Reach.objects.filter(directive=directive, status=ReachStatus.PENDING).count()
    if (pending or directive.fanout_state != FanoutState.DONE) and not reason.strip():
        raise DirectiveError(f"reason: {pending} households are not reached yet; closing early needs a reason")
    with transaction.atomic():
        directive.status, directive.closed_at, directive.close_reason = (
            DirectiveStatus.CLOSED, timezone.now(), reason.strip())
        directive.save()
        receipts = Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk)
        engine.bulk_transition(receipts, LoopState.CLOSED, actor=acting_user, note=reason or "coverage complete")
        # Receipts never reported (closing early) would otherwise stay open and be reminded for ever.
        engine.bulk_transition(receipts.filter(state__in=OPEN_STATES), LoopState.CANCELLED, actor=acting_user,
                               note=f"directive closed: {reason or 'coverage complete'}")
        audit.record(actor=acting_user, action="directive.close", target=directive,
                     changes={"reason": reason, "pending": pending})
    return directive


def visible_directives(acting_user):
    """Directives the user issued or that reach into the user's part of the district."""
    scope = scope_of(acting_user)
    unit_ids = Loop.objects.filter(kind=RECEIPT, owner_unit=scope.unit).values("subject_id")
    return Directive.objects.filter(subtree_q(scope.root.path, "issuer_unit__path") |
                                    subtree_q(scope.root.path, "scope_unit__path") | Q(pk__in=unit_ids))
