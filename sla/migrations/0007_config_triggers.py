"""Starting timers reads the policies and the business calendar from a per-process copy
(leadflow.config): writes to them change the configuration version."""

from django.db import migrations

from leadflow.config import config_triggers


class Migration(migrations.Migration):
    dependencies = [("sla", "0006_slatimer_sla_timer_unmet_due_idx"), ("leadflow", "0006_config_version")]

    operations = [
        config_triggers("sla_timerpolicy"),
        config_triggers("sla_businesscalendar"),
        config_triggers("sla_calendarclosure"),
    ]
