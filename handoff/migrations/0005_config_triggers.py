"""Routing reads its rules and the default team from a per-process copy (leadflow.config):
writes to them change the configuration version. Not the team's assignment counter,
which every assignment updates."""

from django.db import migrations

from leadflow.config import config_triggers


class Migration(migrations.Migration):
    dependencies = [("handoff", "0004_queuenotice"), ("leadflow", "0006_config_version")]

    operations = [
        config_triggers("handoff_routingrule"),
        config_triggers("handoff_team", update_of=["name", "is_default"]),
    ]
