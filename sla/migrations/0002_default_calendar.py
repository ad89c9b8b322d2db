import datetime as dt

from django.db import migrations


def create_default_calendar(apps, schema_editor):
    BusinessCalendar = apps.get_model("sla", "BusinessCalendar")
    if BusinessCalendar.objects.filter(is_default=True).exists():
        return
    calendar = BusinessCalendar.objects.create(name="本社（東京）", is_default=True)
    # 年末年始: most Japanese companies close 12/29 – 1/3.
    calendar.closures.create(
        name="年末年始", start_date=dt.date(2000, 12, 29), end_date=dt.date(2001, 1, 3),
        every_year=True,
    )


class Migration(migrations.Migration):
    dependencies = [("sla", "0001_initial")]
    operations = [migrations.RunPython(create_default_calendar, migrations.RunPython.noop)]
