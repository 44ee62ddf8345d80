# The public pages' rate counters.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0003_audit_chain'),
    ]

    operations = [
        migrations.CreateModel(
            name='RateCounter',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=64)),
                ('bucket', models.BigIntegerField()),
                ('hits', models.PositiveIntegerField(default=0)),
                ('expires', models.BigIntegerField(db_index=True)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('key', 'bucket'), name='one_rate_counter_per_key_and_bucket')],
            },
        ),
    ]
