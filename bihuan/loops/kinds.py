"""The registry of loop kinds: each module declares its kinds once, with their deadlines and their reminder,
escalation and notification policy; the engine reads the policy from here, so no caller repeats it.

    RECEIPT = kinds.register(LoopKind("directive.receipt", _("指令签收"), notify_on_open=False))

A kind that was never registered (a test's ``"test.task"``) gets the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class LoopKind:
    name: str  # stored in Loop.kind
    label: str = ""  # what people call it ("转办", "服务请求"), in messages and pages
    ack_within: timedelta | None = None  # default deadline to sign for it, from opening
    due_within: timedelta | None = None  # default deadline to report back, from opening
    reminder_interval: int = 1800  # seconds between reminders (催办) once a deadline has passed
    reminder_limit: int = 3  # reminders before the parent unit is told (督办)
    notify_on_open: bool = True  # tell the owner at once (a module that sends its own notice says False)
    urgent: bool = False  # opening it goes by SMS too, through quiet hours
    event: str = ""  # the notification event name (default "loop.opened:<name>")

    @property
    def open_event(self) -> str:
        return self.event or f"loop.opened:{self.name}"

    def __str__(self) -> str:
        return self.name


_REGISTRY: dict[str, LoopKind] = {}


def register(kind: LoopKind) -> str:
    """Declare a kind (idempotent for the same definition); returns its name, the value stored in Loop.kind."""
    known = _REGISTRY.get(kind.name)
    if known is not None and known != kind:
        raise ValueError(f"loop kind {kind.name!r} is declared twice, differently")
    _REGISTRY[kind.name] = kind
    return kind.name


def get(name: str) -> LoopKind:
    return _REGISTRY.get(name) or LoopKind(name, name)


def registered() -> dict[str, LoopKind]:
    return dict(_REGISTRY)
