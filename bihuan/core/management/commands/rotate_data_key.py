"""Re-seal every personal field with the current BIHUAN_DATA_KEY and recompute its lookup hash.

Resumable and idempotent: a value already sealed with the current key is skipped, so the command can be
stopped and run again at any time. Old keys must be listed in BIHUAN_DATA_KEYS_OLD until it has finished.
"""

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from bihuan.core import crypto


def sealed_models():
    return [m for m in apps.get_models() if getattr(m, "SEALED_FIELDS", None)]


class Command(BaseCommand):
    help = ("Re-seal personal fields (ID numbers, phones) with the current BIHUAN_DATA_KEY; values sealed with "
            "keys in BIHUAN_DATA_KEYS_OLD are opened and sealed again. Safe to interrupt and re-run.")

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=2000, help="rows per transaction (default 2000)")
        parser.add_argument("--rehash", action="store_true",
                            help="also recompute every lookup hash (after setting or changing BIHUAN_LOOKUP_KEY)")

    def handle(self, *args, batch, rehash, **options):
        for model in sealed_models():
            fields = model.SEALED_FIELDS
            done = 0
            last_pk = 0
            while True:
                rows = list(model.objects.filter(pk__gt=last_pk).order_by("pk")
                            .values_list("pk", *fields)[:batch])
                if not rows:
                    break
                last_pk = rows[-1][0]
                with transaction.atomic():
                    for pk, *blobs in rows:
                        update = {}
                        for (column, (kind, hash_column)), blob in zip(fields.items(), blobs, strict=True):
                            current = crypto.sealed_with_current_key(blob)
                            if current and not rehash:
                                continue
                            clear = crypto.unseal(blob)
                            if not current:
                                update[column] = crypto.seal(clear)
                            update[hash_column] = crypto.lookup_hash(kind, clear)
                        if update:
                            model.objects.filter(pk=pk).update(**update)
                            done += 1
            self.stdout.write(f"{model._meta.label}: {done} rows re-sealed")
