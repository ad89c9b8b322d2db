"""End to end on PostgreSQL + Redis with a real Celery worker: a signed webhook goes in
through the endpoint, the worker (another process) turns it into a lead and events."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from urllib.parse import quote

import pytest
from django.db import connection

from integrations.models import InboundEvent, InboundStatus
from leadflow.models import EngagementEvent, EventKind, Lead
from scoring.models import LeadScore
from scoring.selectors import lead_score_explain
from tests.integrations.conftest import (
    REPO_ROOT,
    ensure_default_scoring_model,
    make_source,
    post,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _test_database_url() -> str:
    # pytest-django runs on test_<name>; the worker must use that database, not <name>.
    db = connection.settings_dict
    user = quote(db["USER"] or "")
    password = f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    host = db["HOST"] or "127.0.0.1"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{user}{password}@{host}{port}/{db['NAME']}"


@pytest.fixture
def celery_worker(settings):
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "leadflow", "worker",
            "--pool=solo", "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--loglevel=WARNING",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)


def _wait_for(predicate, worker, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if worker.poll() is not None:
            output = worker.stdout.read().decode(errors="replace") if worker.stdout else ""
            pytest.fail(f"the Celery worker exited with {worker.returncode}:\n{output}")
        time.sleep(0.25)
    pytest.fail(f"nothing happened within {timeout} s")


@pytest.mark.django_db(transaction=True)
def test_signed_mautic_webhook_in_lead_events_and_scores_out(client, celery_worker):
    assert connection.vendor == "postgresql"
    ensure_default_scoring_model()  # the published default model scores the lead
    source = make_source("mautic")
    body = (
        b'{"mautic.form_on_submit":[{"submission":{"id":501,"form":{"id":4,"name":"Whitepaper",'
        b'"alias":"whitepaper"},"lead":{"id":77,"points":20,"fields":{"core":{"email":{"value":'
        b'"Yamada@Example.co.jp"},"firstname":{"value":"\\u592a\\u90ce"},"lastname":{"value":'
        b'"\\u5c71\\u7530"},"company":{"value":"\\u682a\\u5f0f\\u4f1a\\u793e\\u30b5\\u30f3\\u30d7'
        b'\\u30eb"}}}},"dateSubmitted":"2026-01-15T10:00:00+09:00","referer":"https:\\/\\/'
        b'example.jp\\/dl","results":{"email":"Yamada@Example.co.jp"}},"timestamp":'
        b'"2026-01-15T10:00:01+09:00"}],"mautic.page_on_hit":[{"hit":{"dateHit":'
        b'"2026-01-15T10:05:00+09:00","url":"https:\\/\\/example.jp\\/pricing","lead":{"id":77,'
        b'"fields":{"core":{"email":{"value":"yamada@example.co.jp"}}}}},"timestamp":'
        b'"2026-01-15T10:05:01+09:00"}]}'
    )

    response = post(client, source, body)

    assert response.status_code == 202
    inbound_id = response.json()["id"]
    _wait_for(
        lambda: InboundEvent.objects.get(pk=inbound_id).status != InboundStatus.RECEIVED,
        celery_worker,
    )
    inbound = InboundEvent.objects.get(pk=inbound_id)
    assert inbound.status == InboundStatus.PROCESSED, inbound.reason
    lead = Lead.objects.get(email="yamada@example.co.jp")
    assert (lead.last_name, lead.first_name, lead.company.name) == (
        "山田",
        "太郎",
        "株式会社サンプル",
    )
    assert lead.attributes["ma_points"] == 20
    kinds = sorted(EngagementEvent.objects.filter(lead=lead).values_list("kind", flat=True))
    assert kinds == sorted([EventKind.FORM_SUBMIT, EventKind.PRICING_PAGE_VIEW])
    # Scored by the worker in the same processing transaction, from both events.
    score = LeadScore.objects.get(lead=lead)
    assert score.model.status == "published"
    assert score.last_event_at == dt.datetime(2026, 1, 15, 1, 5, tzinfo=dt.UTC)
    explained = lead_score_explain(score=score)
    assert sorted(line.count for line in explained.engagement_lines) == [1, 1]
    assert explained.engagement == score.engagement

    # The same delivery again is acknowledged and changes nothing.
    again = post(client, source, body)
    assert again.status_code == 200
    time.sleep(1)
    assert EngagementEvent.objects.count() == 2
