"""Service requests read where they stand from their loop (assigned = the loop's owner person, done =
reported, confirmed = closed): the copies go. Missed check-ins become the subjects of MISSED_CHECKIN loops:
the row keeps only control's own steps (the person's reminder; ``alerted_at`` becomes ``handed_at``, the step
that opens the loop). Control types are versioned (a new version per edit, one current per code)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('control', '0004_missedcheckin'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='controltype',
            options={'ordering': ['-rank', 'code', '-version']},
        ),
        migrations.RemoveIndex(
            model_name='missedcheckin',
            name='control_mis_alerted_71e24c_idx',
        ),
        migrations.RenameField(
            model_name='missedcheckin',
            old_name='alerted_at',
            new_name='handed_at',
        ),
        migrations.RemoveField(
            model_name='missedcheckin',
            name='resolved_at',
        ),
        migrations.RemoveField(
            model_name='servicerequest',
            name='assigned_to',
        ),
        migrations.RemoveField(
            model_name='servicerequest',
            name='confirmed_at',
        ),
        migrations.RemoveField(
            model_name='servicerequest',
            name='done_at',
        ),
        migrations.AddField(
            model_name='controltype',
            name='created_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='controltype',
            name='created_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='controltype',
            name='is_current',
            field=models.BooleanField(default=True),
        ),
        migrations.AddField(
            model_name='controltype',
            name='note',
            field=models.CharField(blank=True, max_length=300),
        ),
        migrations.AddField(
            model_name='controltype',
            name='version',
            field=models.PositiveSmallIntegerField(default=1),
        ),
        migrations.AlterField(
            model_name='controltype',
            name='code',
            field=models.CharField(max_length=30),
        ),
        migrations.AddIndex(
            model_name='missedcheckin',
            index=models.Index(fields=['handed_at', 'alert_at'], name='control_mis_handed__c8a02f_idx'),
        ),
        migrations.AddConstraint(
            model_name='controltype',
            constraint=models.UniqueConstraint(fields=('code', 'version'), name='one_control_type_version'),
        ),
        migrations.AddConstraint(
            model_name='controltype',
            constraint=models.UniqueConstraint(condition=models.Q(('is_current', True)), fields=('code',), name='one_current_control_type'),
        ),
    ]
