"""All writes of directives: issue, sign, relay, report, mark households, resident confirmation, update,
cancel, close. Each checks permission and scope through register.access and writes its audit row."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from bihuan.core import audit
from bihuan.core.errors import Refused
from bihuan.core.roles import Perm
from bihuan.loops import engine
from bihuan.loops.models import OPEN_STATES, Loop, LoopState
from bihuan.register.access import access_unit, require, scoped
from bihuan.register.models import KEY_GROUPS, MAX_LEVEL, Unit, UnitKind

from . import fanout, taps
from .models import RECEIPT, Directive, DirectiveStatus, FanoutState, Reach, ReachMethod, ReachStatus, Urgency
from .selectors import (  # noqa: F401  (visible_directives: the older import path)
    receipt_for,
    visible_directives,
)

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
        clean.append({"key": key, "label": str(field.get("label") or key), "type": kind, "choices": choices,
                      "required": bool(field.get("required", False))})
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
    if not scope.acts_as_own_unit:  # an API token narrowed below the account's unit: no directive in its name
        raise DirectiveError(f"issuer: this API token is limited to {scope.root.name}; directives are issued in "
                             f"the name of {scope.own_unit.name} with a token for its whole part of the district")
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
        fanout.distribute(directive)
        directive.refresh_from_db()
    return directive


def do_sign_receipt(*, loop_id: int, acting_user) -> Loop:
    """签收 for one's unit (or, recorded as such, for a unit below one's own)."""
    require(acting_user, Perm.SIGN_RECEIPT)
    with transaction.atomic():
        loop = receipt_for(acting_user, loop_id)
        if loop.state != LoopState.ISSUED:
            return loop
        return engine.transition(loop, LoopState.ACKNOWLEDGED, actor=acting_user)


def do_relay_receipt(*, loop_id: int, acting_user) -> Loop:
    """下达: passed on to the units below (whose receipts already wait for them)."""
    require(acting_user, Perm.SIGN_RECEIPT)
    with transaction.atomic():
        loop = receipt_for(acting_user, loop_id)
        if loop.state in (LoopState.ISSUED, LoopState.ACKNOWLEDGED):
            loop = engine.transition(loop, LoopState.IN_PROGRESS, actor=acting_user, note="relayed")
        return loop


def clean_answers(form: list[dict], answers: dict) -> dict:
    """The answers to the form's fields, typed; a required field left empty, or a form with fields answered
    with nothing at all, is refused (an empty 反馈 tells the issuer nothing)."""
    out = {}
    for field in form:
        key, value = field["key"], answers.get(field["key"])
        if isinstance(value, str):
            value = value.strip()
        if value in (None, ""):
            if field.get("required"):
                raise DirectiveError(key, "this field is required")
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
    if form and not out:
        raise DirectiveError(form[0]["key"], "answer at least one field of the feedback form")
    return out


HISTORY_LIMIT = 50  # earlier versions of a report kept with it


def do_report_receipt(*, loop_id: int, answers: dict, acting_user, note: str = "") -> Loop:
    """反馈: the unit's answers to the directive's feedback form. Until the issuer closes (or cancels) the
    directive the unit may amend its report: the new answers replace the old ones for every rollup, the
    earlier version is kept in the report's history (``data["history"]``: answers, who, when) and the loop's
    history gets an "amended" event (the engine's)."""
    require(acting_user, Perm.SIGN_RECEIPT)
    with transaction.atomic():
        loop = receipt_for(acting_user, loop_id)
        directive = Directive.objects.get(pk=loop.subject_id)
        if directive.status != DirectiveStatus.ISSUED or loop.state in (LoopState.CLOSED, LoopState.CANCELLED):
            raise DirectiveError.conflict("directive", "it is closed or cancelled: the report can no longer be changed")
        clean = clean_answers(directive.feedback_form, answers)
        data = {"answers": clean, "reported_by": _who(acting_user), "note": note[:2000]}
        amending = loop.state == LoopState.REPORTED
        if amending:
            old = loop.data or {}
            if old.get("answers") == clean and old.get("note", "") == data["note"]:
                return loop  # the same report again (a double tap) changes nothing
            earlier = {"answers": old.get("answers", {}), "note": old.get("note", ""),
                       "by": old.get("reported_by", ""), "at": old.get("reported_at") or _iso(loop.reported_at)}
            data["history"] = [earlier, *old.get("history", [])][:HISTORY_LIMIT]
        data["reported_at"] = _iso(timezone.now())
        loop = engine.transition(loop, LoopState.REPORTED, actor=acting_user, note=note, data=data)
        changes = {"unit": loop.owner_unit_id, "answers": clean}
        if amending:
            changes["before"] = data["history"][0]["answers"]
        audit.record(actor=acting_user, action="directive.amend_report" if amending else "directive.report",
                     target=directive, changes=changes)
        return loop


def _who(user) -> str:
    staff = getattr(user, "staff", None)
    return (getattr(staff, "name", "") or user.get_full_name() or user.get_username())[:100]


def _iso(value) -> str:
    return timezone.localtime(value).isoformat(timespec="seconds") if value else ""


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
        raise DirectiveError.conflict("directive: it is closed or cancelled")
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
    if not directive.manageable_by(scope):
        raise PermissionDenied("only the issuing unit (or one above it) may change a directive")


def do_update_directive(*, directive: Directive, acting_user, title: str | None = None, body: str | None = None,
                        urgency: str | None = None) -> Directive:
    _check_issuer(acting_user, directive)
    if directive.status != DirectiveStatus.ISSUED:
        raise DirectiveError.conflict("directive: it is closed or cancelled")
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
        told = fanout.notify_receivers(directive, "updated", f"指令更新（第 {directive.version} 版）：{directive.title}",
                                       directive.body)
        audit.record(actor=acting_user, action="directive.update", target=directive,
                     changes={"before": before, "version": directive.version, "notified": told})
    return directive


def do_cancel_directive(*, directive: Directive, reason: str, acting_user) -> Directive:
    _check_issuer(acting_user, directive)
    if directive.status != DirectiveStatus.ISSUED:
        raise DirectiveError.conflict("directive: it is already closed or cancelled")
    if not reason.strip():
        raise DirectiveError("reason: say why the directive is cancelled")
    with transaction.atomic():
        directive.status, directive.closed_at, directive.close_reason = (
            DirectiveStatus.CANCELLED, timezone.now(), reason.strip())
        directive.save()
        engine.bulk_transition(Loop.objects.filter(kind=RECEIPT, subject_id=directive.pk), LoopState.CANCELLED,
                               actor=acting_user, note=reason)
        told = fanout.notify_receivers(directive, "cancelled", f"指令撤销：{directive.title}", reason)
        audit.record(actor=acting_user, action="directive.cancel", target=directive,
                     changes={"reason": reason, "notified": told})
    return directive


def do_close_directive(*, directive: Directive, acting_user, reason: str = "") -> Directive:
    """销号. With every household reached (or unreachable with a reason) no reason is needed; early needs one."""
    _check_issuer(acting_user, directive)
    if directive.status != DirectiveStatus.ISSUED:
        raise DirectiveError.conflict("directive: it is already closed or cancelled")
    pending = Reach.objects.filter(directive=directive, status=ReachStatus.PENDING).count()
    if (pending or directive.fanout_state != FanoutState.DONE) and not reason.strip():
        raise DirectiveError.conflict(f"reason: {pending} households are not reached yet; closing early needs a reason")
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
