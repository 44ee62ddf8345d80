from django.db import transaction

from bihuan.core import audit
from bihuan.core.retention import purger

from .models import CaseState, ControlCase, TeamMember


@purger("closed control cases")
def purge_cases(before) -> int:
    """Cases closed before the cutoff: name and phones emptied; type, dates, unit and results kept."""
    closed = ControlCase.objects.filter(
        state__in=[CaseState.RELEASED, CaseState.MOVED_UP, CaseState.PHASE_ENDED, CaseState.CANCELLED],
        end_date__lt=before,
    ).exclude(name="")
    with transaction.atomic():
        ids = list(closed.values_list("id", flat=True))
        ControlCase.objects.filter(id__in=ids).update(
            name="", id_masked="", phone_sealed=b"", phone_hash="", phone_masked="", phone_tail="",
            site_address="", site_room="")
        TeamMember.objects.filter(case_id__in=ids, user__isnull=True).update(
            name="", phone_sealed=b"", phone_hash="", phone_masked="", phone_tail="")
        audit.record(actor=None, action="control.purge", target_type="control.controlcase",
                     changes={"before": before.isoformat(), "cases": len(ids)})
    return len(ids)
