"""Transfers between units (转办 / 退回).

A transfer is a ``Transfer`` row plus a loop of kind ``push.transfer`` owned by the receiving unit, which must
sign (accept) or return it before a deadline (``settings.PUSH_TRANSFER_SIGN_HOURS``, default 2 h); the loop
engine reminds it and then tells its parent unit. Until the receiver accepts, the person stays with the
sender: a person always has exactly one owning unit (``person.unit``), the owner of their one verification
loop, and at most one pending transfer.

On acceptance the person's verification loop is *re-owned* by the receiver (the same loop, so its history
stays in one place and a person never has two verification loops; a chain A → B → C is the sequence of
``Transfer`` rows plus the loop's ``transferred`` / ``reassigned`` events). The receiver gets a fresh
verification deadline. A return (退回) gives the person back to the sender with the reason.

A transfer to a unit the person already came from (A → B → A, or A → B → C → A), or sending again to a unit
that returned the person (A → B 退回, A → B), is a ping-pong: flagged, and the staff of the two units' lowest
common ancestor are notified; it is on that unit's ping-pong list.

This module holds the rules (deadlines, the arbiter of a ping-pong); ``actions.py`` the writes
(``do_transfer``, ``do_accept_transfer``, ``do_return_transfer``); ``access.py`` who sees and answers them.
A transfer's status is its loop's state (``Transfer.state``), never a copy.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from bihuan.core.errors import Refused
from bihuan.register.models import SEGMENT, Unit

from .models import PushedPerson, Transfer, TransferState

DEFAULT_SIGN_HOURS = 2


class TransferError(Refused):
    """A transfer (or its answer) was refused; ``field`` names what it is about."""


def sign_deadline(now: datetime | None = None) -> datetime:
    hours = int(getattr(settings, "PUSH_TRANSFER_SIGN_HOURS", DEFAULT_SIGN_HOURS))
    return (now or timezone.now()) + timedelta(hours=hours)


def common_parent(a: Unit, b: Unit) -> Unit | None:
    """The lowest unit whose subtree holds both."""
    n = 0
    while n < min(len(a.path), len(b.path)) and a.path[n] == b.path[n]:
        n += 1
    common = a.path[: n - n % SEGMENT]
    if common in (a.path, b.path):  # one holds the other: its parent is the arbiter
        common = common[:-SEGMENT]
    return Unit.objects.filter(path=common).first() if common else None


def is_ping_pong(person: PushedPerson, from_unit: Unit, to_unit: Unit) -> bool:
    """Sending the person back to a unit they came from, or again to a unit that returned them."""
    came_from = Q(from_unit=to_unit) & Transfer.state_q(TransferState.ACCEPTED)
    bounced = Q(from_unit=from_unit, to_unit=to_unit) & Transfer.state_q(TransferState.RETURNED)
    return Transfer.objects.filter(came_from | bounced, person=person).exists()
