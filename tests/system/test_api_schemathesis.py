"""The API answers as its OpenAPI schema says: schemathesis, every check, against ``/api/v1/`` served over HTTP.

The tiny demo district with its day (directives under way, pushed lists, cases, helpers, inspections) is generated
into the test database and served by pytest-django's live server; schemathesis reads ``/api/v1/openapi.json`` from it
and runs what ``schemathesis run`` runs — the examples, coverage, fuzzing and stateful phases — as the district
commander with a token that may write, so every operation is reached and the writes happen. Every built-in check is
on (``max_response_time`` aside: it has no limit to check on a shared machine):

- no 5xx (``not_a_server_error``);
- every status and content type documented, every body and header as documented (``status_code_conformance``,
  ``content_type_conformance``, ``response_schema_conformance``, ``response_headers_conformance``);
- a request the schema allows is not refused (``positive_data_acceptance``: only 2xx, 401, 403, 404, 409, 429), one it
  does not allow is (``negative_data_rejection``), a wrong method is 405 with ``Allow``, a request without its token
  is 401 (``ignored_auth``, ``missing_required_header``), and the stateful ones.

Bounded and repeatable: ``MAX_EXAMPLES`` per operation and phase, a fixed seed, deterministic generation (the same
4,700-odd requests every run, most of them the coverage phase's boundary and negative cases); on a 2-core machine
1.5 to 2.5 minutes at a load of 2 to 4, up to five when it is much busier. So it runs once per ``make test`` pair:
on PostgreSQL, the production database, where a text over its column's length, a NUL or an SQL typing slip is an
error that SQLite forgives (``BIHUAN_API_SCHEMA_TEST=1`` runs it on SQLite too). Failures are listed per operation
with the request and the answer.

Some refusals depend on what no JSON Schema can state, and stay 400 for input the schema allows:
``RULES_BEYOND_THE_SCHEMA`` names the operations and the rules; for those alone a 400 counts as accepted.
"""

from __future__ import annotations

import collections
import time

import pytest

MAX_EXAMPLES = 10
SEED = 1
API = "/api/v1"

# Operation -> the rules its 400 enforces that a schema cannot state (a checksum, one field against another, what a
# file holds). Everything else a schema can say, it says: lengths, ranges, patterns, enums.
RULES_BEYOND_THE_SCHEMA = {
    "POST /api/v1/forces/posts/{post_id}/shifts": "ends_at after starts_at, at most 12 hours later",
    "POST /api/v1/inspections/findings/{finding_id}/report": "the photo is a JPEG, PNG or WebP image",
    "POST /api/v1/pushes/batches": "the file is a workbook or CSV list the import reads",
    "POST /api/v1/checkpoints/{checkpoint_id}/registrations": "ID numbers with their check digit, plates, phones and "
                                                               "temperatures as the gate reads them; a plate for a vehicle",
    "PUT /api/v1/campaigns/{campaign_id}/households/{household_id}/answer": "people moving in with valid ID numbers, "
                                                                             "people leaving of the household",
    "POST /api/v1/directives/{id}/marks": "a method for reached, a reason for unreachable",
    "PUT /api/v1/notify/preferences": "both ends of the quiet hours or neither, and not the same time",
    "POST /api/v1/notify/robots": "a signing secret for DingTalk robots only",
    "PATCH /api/v1/notify/robots/{id}": "a signing secret for DingTalk robots only",
    "POST /api/v1/directives": "the feedback form's keys differ, a choice field lists its choices",
    "POST /api/v1/directives/receipts/{loop_id}/report": "the answers fit the directive's own feedback form",
    "POST /api/v1/staff": "an email address as Django's validator reads it",
    "PATCH /api/v1/staff/{id}": "an email address as Django's validator reads it",
}


def _quiet(line: str) -> None:
    pass


def _config(token: str):
    from schemathesis.config import SchemathesisConfig
    from schemathesis.config._checks import POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES

    return SchemathesisConfig.from_dict({
        "seed": SEED,
        "cache": {"enabled": False},  # nothing written outside the test
        # Connection: close: the server's thread for a connection ends with its request and closes its database
        # connection (a kept-alive one would hold the test database open at its teardown).
        "headers": {"Authorization": f"Bearer {token}", "Connection": "close"},
        "workers": 1,
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
            # A NUL character is refused anywhere in a request, before any route (core.http.StrictInputMiddleware,
            # its own test): the one rule of every string that the schema does not repeat on each of them.
            "allow-x00": False,
        },
        # Every path is also sent one method it does not have (405 with Allow), not each of them: the bound.
        "phases": {"coverage": {"unexpected-methods": ["DELETE"]}},
        "operations": [
            {"include-name": name, "checks": {"positive_data_acceptance": {
                "expected-statuses": [*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "400"]}}}
            for name in RULES_BEYOND_THE_SCHEMA
        ],
    })


def _describe(recorder, case_id: str, check) -> str:
    case = recorder.cases[case_id].value
    response = recorder.find_response(case_id=case_id)
    answer = f"{response.status_code} {response.content[:300]!r}" if response is not None else "no answer"
    body = "" if type(case.body).__name__ == "NotSet" else f" body={str(case.body)[:300]}"
    failure = check.failure_info.failure
    return (f"{check.name}: {failure.title}: {failure.message[:300]!r}\n"
            f"      {case.method} {case.formatted_path} query={case.query}{body}\n      -> {answer}")


def test_every_operation_answers_as_the_schema_says(live_server):
    import os

    from django.db import connection

    if connection.vendor != "postgresql" and os.environ.get("BIHUAN_API_SCHEMA_TEST") != "1":
        pytest.skip("runs on PostgreSQL (CI's second pass), or with BIHUAN_API_SCHEMA_TEST=1")
    import schemathesis
    from django.contrib.auth import get_user_model
    from schemathesis.engine import Status, events, from_schema

    from bihuan.core.actions import do_create_api_token
    from bihuan.demo.generate import generate_district

    generate_district("tiny", seed=SEED, out=_quiet, day=True)
    commander = get_user_model().objects.get(username="commander")
    _, token = do_create_api_token(user=commander, name="schemathesis", acting_user=commander, write=True)
    schema = schemathesis.openapi.from_url(f"{live_server.url}{API}/openapi.json", config=_config(token))
    operations = sum(1 for _ in schema.get_all_operations())

    started = time.perf_counter()
    cases: collections.Counter = collections.Counter()
    failures: dict[str, set[str]] = collections.defaultdict(set)
    errors: list[str] = []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            cases[str(event.phase.value)] += len(recorder.cases)
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.status == Status.FAILURE:
                        failures[recorder.label].add(_describe(recorder, case_id, check))
        elif isinstance(event, events.NonFatalError):
            errors.append(f"{event.label}: {event.info.title}: {event.info.message[:500]}")
        elif isinstance(event, events.FatalError):
            errors.append(f"fatal: {event.exception!r}")
    seconds = time.perf_counter() - started
    print(f"\nschemathesis: {operations} operations, {sum(cases.values())} requests {dict(cases)}, "
          f"{sum(map(len, failures.values()))} failures in {len(failures)} operations, {seconds:.0f} s")

    report = [f"{label}:\n    " + "\n    ".join(sorted(items)) for label, items in sorted(failures.items())]
    assert not failures and not errors, "\n".join(report + errors)
    assert operations >= 80 and sum(cases.values()) > 20 * operations
