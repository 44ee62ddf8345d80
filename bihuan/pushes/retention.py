from django.db import transaction

from bihuan.core import audit
from bihuan.core.retention import purger

from .models import PushedPerson, PushRow


@purger("pushed people")
def purge_pushed_people(before) -> int:
    """People last pushed before the cutoff: name, ID and phone emptied; routing and outcomes kept."""
    with transaction.atomic():
        n = PushedPerson.objects.filter(last_pushed_at__date__lt=before).exclude(name="").update(
            name="", id_sealed=b"", id_hash="", id_masked="", id_tail="",
            phone_sealed=b"", phone_hash="", phone_masked="", phone_tail="", address_text="")
        PushRow.objects.filter(batch__uploaded_at__date__lt=before).exclude(masked={}).update(masked={})
        audit.record(actor=None, action="pushes.purge", target_type="pushes.pushedperson",
                     changes={"before": before.isoformat(), "people": n})
    return n
