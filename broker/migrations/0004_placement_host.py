"""Placements record the host that owns their pane (issue 13, many hosts).

Rows made before this migration get '' (no host recorded), which every host treats as its
own, so a single-host registry behaves as before.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("cafleet", "0003_member_events"),
    ]

    operations = [
        migrations.AddField(
            model_name="placement",
            name="host_id",
            field=models.TextField(blank=True, db_default="", default=""),
        ),
    ]
