"""Migration 0004 gives every existing rule its own lineage key, and a clone's rules the
keys of the rules they were copied from, so drafts made before it still diff right."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("scoring", "0003_event_kinds")]
AFTER = [("scoring", "0004_rule_keys")]


@pytest.mark.django_db(transaction=True)
def test_a_clone_made_before_the_keys_shares_them_with_its_source():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    Model = apps.get_model("scoring", "ScoringModel")
    Rule = apps.get_model("scoring", "EngagementRule")
    source = Model.objects.create(name="v", version=100, status="archived")
    clone = Model.objects.create(name="v", version=101, status="draft", based_on=source)
    seminar = Rule.objects.create(model=source, kind="seminar_attendance", points=15, position=0)
    views = Rule.objects.create(model=source, kind="page_view", points=3, position=1)
    # In the clone: the seminar's points were edited, page views kept, one rule added.
    c_seminar = Rule.objects.create(model=clone, kind="seminar_attendance", points=30, position=0)
    c_views = Rule.objects.create(model=clone, kind="page_view", points=3, position=1)
    c_new = Rule.objects.create(model=clone, kind="unsubscribe", points=-20, position=2)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    Rule = executor.loader.project_state(AFTER).apps.get_model("scoring", "EngagementRule")
    key = {r.pk: r.key for r in Rule.objects.all()}

    assert key[c_seminar.pk] == key[seminar.pk]
    assert key[c_views.pk] == key[views.pk]
    assert len({key[seminar.pk], key[views.pk], key[c_new.pk]}) == 3

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
