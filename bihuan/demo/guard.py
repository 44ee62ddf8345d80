"""Demo commands build or wipe data with well-known passwords: they run only in demo mode (BIHUAN_DEMO=1)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import CommandError


def require_demo_mode(command: str) -> None:
    """Refuse ``command`` outside demo mode (a production register is never wiped or filled with demo logins)."""
    if not settings.DEMO:
        raise CommandError(f"`bihuan {command}` builds demo data with published passwords and may delete the "
                           "register: it runs only with BIHUAN_DEMO=1, never on a production database.")
