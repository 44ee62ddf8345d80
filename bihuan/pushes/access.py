"""Who may see what in pushes: the one place that decides, on top of ``register.access`` (a user's part of the
district is their unit's subtree). Pages, the API and the actions all call these; an outsider gets a 404 and
learns nothing, an insider whose role lacks the permission a 403 (``require``).

- a pushed person: handled in the user's part (``access_person``); a unit a person is being transferred to
  sees them too, read-only, until it answers (``viewable_person``);
- a transfer: seen from both ends (``visible_transfers``), answered by the receiving side (``access_incoming``);
- a batch: seen by the unit it was uploaded for and the units above it (``visible_batches``, ``access_batch``).
"""

from __future__ import annotations

from django.http import Http404

from bihuan.core.roles import Perm
from bihuan.register.access import require, scope_of, scoped
from bihuan.register.models import subtree_q

from .models import PushBatch, PushedPerson, Transfer, Verification


def access_person(user, person_id: int, *, for_update: bool = False) -> PushedPerson:
    """A person handled in the user's part of the district (their unit's subtree), else 404."""
    qs = PushedPerson.objects.select_related("unit")
    if for_update:
        qs = qs.select_for_update(of=("self",))
    person = scoped(user, qs).filter(pk=person_id).first()
    if person is None:
        raise Http404("no such person in your part of the district")
    return person


def viewable_person(user, person_id: int) -> tuple[PushedPerson, Transfer | None]:
    """(person, pending transfer to the user's part) — the owner side sees and edits; a receiving unit sees a
    person transferred to it until it answers. Anything else is a 404."""
    try:
        return access_person(user, person_id), None
    except Http404:
        pass
    root = scope_of(user).root.path
    transfer = (Transfer.objects.pending().select_related("person", "person__unit", "from_unit", "to_unit", "loop")
                .filter(subtree_q(root, "to_unit__path"), person_id=person_id).first())
    if transfer is None:
        raise Http404("no such person in your part of the district")
    return transfer.person, transfer


def verification_for_update(user, verification: Verification) -> tuple[PushedPerson, Verification]:
    """The person and their verification, locked, for a user who may verify them (403 / 404 otherwise)."""
    require(user, Perm.VERIFY_PUSH)
    person = access_person(user, verification.person_id, for_update=True)
    ver = Verification.objects.select_for_update().get(pk=verification.pk)
    return person, ver


def visible_transfers(user):
    """Transfers from or to the user's part of the district."""
    root = scope_of(user).root.path
    return Transfer.objects.filter(subtree_q(root, "from_unit__path") | subtree_q(root, "to_unit__path"))


def access_incoming(user, transfer_id: int) -> Transfer:
    """A transfer addressed to the user's unit or a unit below it (the ones who may answer), else 404."""
    require(user, Perm.VERIFY_PUSH)
    root = scope_of(user).root.path
    transfer = (Transfer.objects.select_related("person", "from_unit", "to_unit", "loop")
                .filter(subtree_q(root, "to_unit__path"), pk=transfer_id).first())
    if transfer is None:
        raise Http404("no such transfer for your unit")
    return transfer


def visible_batches(user):
    """Batches uploaded for the user's unit or a unit below it (the file's bytes left out)."""
    return (PushBatch.objects.filter(subtree_q(scope_of(user).root.path, "unit__path"))
            .select_related("unit").defer("file_data"))


def access_batch(user, batch_id: int, *, perm: str | None = Perm.IMPORT_PUSH) -> PushBatch:
    """A batch in the user's part of the district (else 404), then ``perm`` (403; None: the caller checks its
    own permission, e.g. reading the people a batch named needs ``verify_push``)."""
    batch = visible_batches(user).filter(pk=batch_id).first()
    if batch is None:
        raise Http404("no such batch in your part of the district")
    if perm is not None:
        require(user, perm)
    return batch
