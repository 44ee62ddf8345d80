# API tokens: read or write, a unit subtree, an expiry.

import datetime as dt

from django.db import migrations, models
from django.utils import timezone


def keep_existing_tokens_working(apps, schema_editor):
    """Tokens made before scopes existed could write and never expired: they keep writing, and expire in 90 days."""
    ApiToken = apps.get_model("core", "ApiToken")
    ApiToken.objects.update(can_write=True, expires_at=timezone.now() + dt.timedelta(days=90))


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0004_rate_counter'),
    ]

    operations = [
        migrations.AddField(
            model_name='apitoken',
            name='can_write',
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name='apitoken',
            name='expires_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='apitoken',
            name='subtree_unit_id',
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(keep_existing_tokens_working, migrations.RunPython.noop),
    ]
