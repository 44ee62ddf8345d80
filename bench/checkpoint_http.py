"""``python -m bench checkpoint-http``: checkpoint registrations with matching through the real HTTP stack.

The method of ``confirm-http``: gunicorn (``-w 2``, or ``BENCH_WORKERS``; DEBUG off, the benchmark's database),
GETs of a trivial page (``/login/``: a template, no database work) from ``THREADS`` client threads in ROUNDS
rounds first, on a quiet database, then as many rounds of registrations. Each registration is one car of four
people POSTed as a gate's app sends it (``POST /api/v1/checkpoints/<id>/registrations``, a bearer token, JSON),
and is matched in full: the four people against the residents, the pushed people and the self-reports by
their lookup hashes, the origin against the risk-area list in force; whoever needs verification is pushed
(source 卡口: de-duplicated, routed, a verification loop opened, its owners told) in the same request.

The cars are a checkpoint's mix: the driver is a resident of the district, the passengers are not; one car in
``RISK_EVERY`` comes from a listed risk area (its four people are pushed for verification), the others show a
recent negative test (registered only). Every request must answer 201 and the database must hold exactly the
registrations and people sent afterwards.

What the request does not do is the push itself: routing, opening the verification loop and telling its owners
is the worker's ``checkpoints.push`` task, seconds later (a checkpoint must never wait for it). After the timed
rounds the bench runs that task to the end (untimed for the ratio, its time printed) and checks that exactly the
people of the risk-area cars were pushed. In the JSON line ``seconds`` is the wall time per registration and
``baseline_seconds`` the wall time per trivial request, summed over all rounds: ``ratio`` = t / b, lower is
better, the target is ≤ 3. n = registrations. The bench's checkpoint, registrations and pushed people are
deleted at the end.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import time

from bench.common import Gunicorn, database, ensure_scale, http_load, report

NAME = "bench:checkpoint-http"
ROUNDS = 6  # rounds of each kind; all count
PER_ROUND = 200  # registrations per round (four people each)
WARMUP = 50
RISK_EVERY = 4  # one car in four from a risk area
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
THREADS = max(4, 2 * WORKERS)
RISK_AREA = "上海市浦东新区"


def _id_number(rng: random.Random) -> str:
    from bihuan.core.personal import id_checksum

    birth = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(0, 20000))
    body = f"{rng.choice(['110105', '310115', '440305', '140105'])}{birth:%Y%m%d}{rng.randrange(1000):03d}"
    return body + id_checksum(body)


def cars(n: int, drivers: list[tuple[str, str]], seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        risky = i % RISK_EVERY == 0
        origin = RISK_AREA if risky else rng.choice(["太原市", "北京市朝阳区", "西安市", "郑州市"])
        name, id_number = drivers[i % len(drivers)]
        people = [{"name": name, "id_number": id_number, "origin": origin, "destination": "",
                   "temperature": "36.5", "health_code": "green", "test_hours": 24}]
        for k in range(3):
            people.append({"name": f"乘客{k + 1}", "id_number": _id_number(rng),
                           "phone": f"1{rng.choice('3589')}{rng.randrange(10**9):09d}",
                           "temperature": f"36.{rng.randrange(2, 9)}", "health_code": "green", "test_hours": 24})
        out.append({"token": f"bench-{seed}-{i}", "vehicle_type": rng.choice(["car", "new_energy"]),
                    "plate": f"晋L{'D' if i % 2 else ''}{rng.randrange(10**5):05d}"[:8] if i % 2 else
                    f"晋L{rng.randrange(10**5):05d}", "people": people})
    return out


def cleanup(checkpoint_ids: list[int] | None = None) -> None:
    """Delete the bench's checkpoints with their registrations, and the people the bench pushed."""
    from django.db import transaction

    from bihuan.checkpoints.models import Checkpoint, Registration, Traveller
    from bihuan.loops.models import Loop, LoopEvent
    from bihuan.pushes.models import VERIFICATION, Evidence, PushBatch, PushedPerson, Verification

    checkpoints = Checkpoint.objects.filter(name=NAME)
    units = list(checkpoints.values_list("unit_id", flat=True))
    with transaction.atomic():
        people = list(PushedPerson.objects.filter(first_batch__unit_id__in=units, first_batch__source="卡口")
                      .values_list("id", flat=True))
        loops = Loop.objects.filter(kind=VERIFICATION, subject_id__in=people)
        LoopEvent.objects.filter(loop__in=loops).delete()
        Verification.objects.filter(person_id__in=people).delete()
        loops.delete()
        Evidence.objects.filter(person_id__in=people).delete()
        Traveller.objects.filter(registration__checkpoint__in=checkpoints).delete()
        Registration.objects.filter(checkpoint__in=checkpoints).delete()
        PushedPerson.objects.filter(pk__in=people).delete()
        PushBatch.objects.filter(unit_id__in=units, source="卡口", file_data=b"",
                                 file_name__startswith="卡口 ").exclude(
            pk__in=PushedPerson.objects.values("first_batch_id")).delete()
        checkpoints.delete()


def run(scale: str) -> dict:
    from django.contrib.auth import get_user_model

    from bihuan.checkpoints.actions import do_create_checkpoint
    from bihuan.checkpoints.models import Registration, Traveller
    from bihuan.core.actions import do_create_api_token
    from bihuan.policy.models import RiskArea, RiskLevel
    from bihuan.register.models import Resident, Unit, UnitKind

    ensure_scale(scale)
    cleanup()
    commander = get_user_model().objects.get(username="commander")
    community = Unit.objects.filter(kind=UnitKind.COMMUNITY).order_by("path").first()
    checkpoint = do_create_checkpoint(unit=community, name=NAME, kind="highway_exit", acting_user=commander)
    added_area = None
    if not RiskArea.objects.filter(name=RISK_AREA, effective_to__isnull=True).exists():
        added_area = RiskArea.objects.create(level=RiskLevel.HIGH, name=RISK_AREA, effective_from=dt.date(2020, 1, 1),
                                             list_name=NAME)
    _token, key = do_create_api_token(user=commander, name=NAME, acting_user=commander, write=True)
    try:
        n = ROUNDS * PER_ROUND
        step = max(1, Resident.objects.count() // (n + WARMUP))
        drivers = [(r.name, r.reveal_id_number()) for r in
                   Resident.objects.exclude(id_hash="").order_by("id")[::step][: n + WARMUP]]
        seed = int(time.time())
        bodies = cars(n + WARMUP, drivers, seed)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        path = f"/api/v1/checkpoints/{checkpoint.pk}/registrations"
        posts = [("POST", path, json.dumps(b, ensure_ascii=False).encode(), headers) for b in bodies]
        trivial_req = [("GET", "/login/", b"", {})]
        print(f"database: {database()}; {n:,} registrations of a car of four (one in {RISK_EVERY} from a risk "
              f"area) and as many GET /login/ in {ROUNDS} rounds each, {THREADS} client threads, "
              f"gunicorn -w {WORKERS}")
        trivial, register = [], []
        with Gunicorn(workers=WORKERS) as server:
            http_load(server.port, trivial_req * WARMUP, threads=THREADS)
            for _ in range(ROUNDS):
                trivial.append(http_load(server.port, trivial_req * PER_ROUND, threads=THREADS))
            http_load(server.port, posts[:WARMUP], threads=THREADS, ok=(201,))
            for r in range(ROUNDS):
                register.append(http_load(server.port, posts[WARMUP + r * PER_ROUND: WARMUP + (r + 1) * PER_ROUND],
                                          threads=THREADS, ok=(201,)))
        for r, ((ts, tk), (rs, rk)) in enumerate(zip(trivial, register, strict=True)):
            print(f"round {r + 1}: {ts / tk * 1000:.2f} ms per GET /login/, {rs / rk * 1000:.2f} ms per registration")
        from bihuan.checkpoints.actions import push_pending

        started, pushed_now = time.perf_counter(), 0
        while (batch := push_pending(limit=500)):
            pushed_now += batch
        print(f"the worker's checkpoints.push: {pushed_now:,} people pushed in {time.perf_counter() - started:.1f} s")
        done = sum(k for _, k in register)
        regs = Registration.objects.filter(checkpoint=checkpoint).count()
        people = Traveller.objects.filter(registration__checkpoint=checkpoint).count()
        pushed = Traveller.objects.filter(registration__checkpoint=checkpoint, pushed_person__isnull=False).count()
        assert regs == WARMUP + done and people == 4 * regs, (regs, people, WARMUP + done)
        risky = len([b for b in bodies[:regs] if b["people"][0]["origin"] == RISK_AREA])
        assert pushed == 4 * risky, (pushed, risky)
        print(f"{regs:,} registrations, {people:,} people, {pushed:,} pushed for verification")
    finally:
        cleanup()
        if added_area is not None:
            added_area.delete()
        from bihuan.core.models import ApiToken

        ApiToken.objects.filter(name=NAME).delete()
    per_registration = sum(s for s, _ in register) / done
    per_trivial = sum(s for s, _ in trivial) / sum(k for _, k in trivial)
    print(f"all rounds: {1 / per_registration:,.0f} registrations per second; {1 / per_trivial:,.0f} GET /login/ "
          f"per second (time per registration / time per trivial request: lower is better, ≤ 3 is the target)")
    return report("checkpoint-http", scale, done, per_registration,
                  "GET /login/ (a template, no database work) on the same gunicorn; seconds are per request: "
                  "ratio = time per registration (a car of four, matched; the push is the worker's) / time per trivial "
                  "request, "
                  "target ≤ 3", per_trivial)
