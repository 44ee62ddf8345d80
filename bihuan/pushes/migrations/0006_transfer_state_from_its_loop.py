"""A transfer's status is its loop's state: the copy on the transfer goes."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("pushes", "0005_policy_moves_to_its_app"),
        ("loops", "0001_initial"),
    ]

    operations = [
        migrations.RemoveField(model_name="transfer", name="state"),
    ]
