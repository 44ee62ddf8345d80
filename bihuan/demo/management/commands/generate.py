"""``bihuan generate``: build a deterministic, realistic district (tiny, demo or the full Yaodu)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from bihuan.demo.generate import (
    PRESETS,
    RegisterNotEmpty,
    generate_district,
    register_is_empty,
    reset_register,
)
from bihuan.demo.guard import require_demo_mode


class Command(BaseCommand):
    help = (
        "Generate a realistic district register: units of levels 1-6, households and residents (level 7), "
        "a staff account for every unit and a responsible person for every grid. Presets: "
        "tiny (a few hundred residents, every level present), demo (about 20,000 residents), "
        "yaodu (the real district: 26 township-level units, 57 communities, 372 villages, about 944,000 "
        "residents). The same seed gives the same district. All generated accounts get the password "
        "'bihuan2022'. Beside the register it builds a day in progress as of now (directives, pushed lists, "
        "people under control, check-ins, service requests, blind spots, inbox messages) unless --no-day. Refuses to "
        "run on a non-empty register unless --reset is given, and outside demo mode (BIHUAN_DEMO=1) always."
    )

    def add_arguments(self, parser):
        parser.add_argument("--preset", choices=list(PRESETS), default="tiny",
                            help="size of the district to build (default: tiny)")
        parser.add_argument("--seed", type=int, default=1,
                            help="random seed; the same seed builds the same district (default: 1)")
        parser.add_argument("--no-day", action="store_true",
                            help="build the register only, without the day in progress")
        parser.add_argument("--reset", action="store_true",
                            help="first delete the whole register: units, households, residents, staff and "
                                 "their user accounts, the audit rows, and the rows of other apps that point "
                                 "at them (directives, loops, ...)")

    def handle(self, *args, preset: str, seed: int, reset: bool, no_day: bool = False, verbosity: int = 1,
               **options):
        require_demo_mode("generate")
        def out(line: str) -> None:
            if verbosity >= 1:
                self.stdout.write(line)

        try:
            with transaction.atomic():
                if not register_is_empty():
                    if not reset:
                        raise CommandError("The register is not empty. Run again with --reset to delete it "
                                           "(units, households, residents, staff accounts, audit rows) first.")
                    reset_register(out=out)
                result = generate_district(preset, seed=seed, out=out, day=not no_day)
        except RegisterNotEmpty as exc:
            raise CommandError(str(exc)) from exc

        self.stdout.write(self.style.SUCCESS(
            f"Generated the {preset} district: "
            + ", ".join(f"level {lv}: {n:,}" for lv, n in result["units"].items())
            + f"; {result['households']:,} households, {result['residents']:,} residents, "
            f"{result['staff']:,} staff accounts."
        ))
        self.stdout.write(f"Demo logins (password: {result['password']}):")
        for login in result["logins"] + result["more_logins"]:
            self.stdout.write(f"  {login['username']:<12} level {login['level']}  {login['role']:<20} {login['unit']}")
        self.stdout.write("Every other unit's account is s<unit code>, e.g. s" + "141002" + "01001.")
