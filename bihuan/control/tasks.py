"""The control-and-care worker tasks. Each is idempotent and safe with any number of workers.

- ``control.checkins``: today's missed check-in slots (one read finds them), then remind the person once and,
  after the grace period, alert the team once (``checkins.detect_missed`` / ``process_missed``).
- ``control.samples``: past days' samples never taken become missed and escalate once
  (``sampling.mark_missed_samples``).
- ``control.release``: cases whose period is over with every test negative are proposed for release, or
  advance to their next phase (``release.propose_releases``).

Messages these tasks enqueue are sent by ``notify.deliver`` on the worker's next tick (it runs earlier in
each tick). Abnormal check-ins and positive results need no task: they are told inside the recording action,
so the first tick delivers them.
"""

from __future__ import annotations

from django.utils import timezone

from bihuan.core.worker import task

from . import checkins, release, sampling


@task("control.checkins")
def checkins_round(owner: str) -> int:
    now = timezone.now()
    return checkins.detect_missed(now) + checkins.process_missed(owner, now)


@task("control.samples")
def samples_round(owner: str) -> int:
    return sampling.mark_missed_samples(timezone.now())


@task("control.release")
def release_round(owner: str) -> int:
    return release.propose_releases(timezone.localdate())
