"""Telling people: the rep of a new assignment, the managers of a queued MQL. Run from
Celery tasks, outside any transaction, each channel at most once."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from handoff import selectors
from handoff.models import (
    Assignment,
    HandoffStatus,
    QueueNotice,
)
from handoff.timeline import timeline_mark
from leadflow.notify import post_webhook, public_url, send_once

logger = logging.getLogger(__name__)


def assignment_notify(*, assignment_id: int) -> dict[str, bool]:
    """E-mail the rep about a new handoff and post to Slack if a webhook is configured.

    Runs outside any transaction (from a Celery task). Returns what was sent this time.
    """
    sent = {"email": False, "slack": False}
    assignment = (
        Assignment.objects.select_related("handoff__lead__company", "handoff__team", "rep")
        .filter(pk=assignment_id)
        .first()
    )
    if assignment is None:
        return sent
    handoff = assignment.handoff
    if handoff.status != HandoffStatus.OPEN or handoff.assigned_to_id != assignment.rep_id:
        return sent  # decided or handed on before we got here: the news is stale
    url = public_url(reverse("handoff:detail", args=[handoff.pk]))
    with translation.override(settings.LANGUAGE_CODE):
        context = {"assignment": assignment, "handoff": handoff, "lead": handoff.lead, "url": url}
        subject = _("New MQL for you: %(lead)s") % {
            "lead": handoff.lead.full_name or handoff.lead.email
        }
        if handoff.lead.company:
            subject += f" ({handoff.lead.company.name})"
        body = render_to_string("handoff/email/assigned.txt", context)
        slack_text = _("%(rep)s has a new MQL: %(lead)s — %(url)s") % {
            "rep": assignment.rep,
            "lead": handoff.lead.full_name or handoff.lead.email,
            "url": url,
        }
    if assignment.rep.email:
        sent["email"] = send_once(
            Assignment,
            assignment.pk,
            "email_sent_at",
            lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [assignment.rep.email]),
        )
    webhook = getattr(settings, "HANDOFF_SLACK_WEBHOOK_URL", "")
    if webhook:
        sent["slack"] = send_once(
            Assignment, assignment.pk, "slack_sent_at", lambda: post_webhook(webhook, slack_text)
        )
    if sent["email"] or sent["slack"]:
        # The first message that reached the rep, whichever channel and assignment.
        timeline_mark(handoff_id=handoff.pk, instant="notified_at", at=timezone.now())
    return sent


def assignments_notify(*, assignment_ids: list[int]) -> tuple[list[int], OSError | None]:
    """Notify each of a bulk move's assignments on its own (assignment_notify): one that
    fails does not stop the others. Returns the ids whose sending failed with a network
    or SMTP error (an OSError: SMTPRecipientsRefused, a refused connection), for the caller
    to retry, and the first such error. Those sent are marked (email_sent_at,
    slack_sent_at), so a retry of the failed ones sends nothing twice. Any other error is a
    bug that a retry would not fix: it is logged, and the rest are still notified."""
    failed: list[int] = []
    first_error: OSError | None = None
    for assignment_id in assignment_ids:
        try:
            assignment_notify(assignment_id=assignment_id)
        except OSError as error:
            logger.warning("Notifying assignment %s failed: %r", assignment_id, error)
            failed.append(assignment_id)
            first_error = first_error or error
        except Exception:
            logger.exception("Notifying assignment %s failed; not retried", assignment_id)
    return failed, first_error


def queue_notice_notify(*, notice_id: int) -> dict[str, bool]:
    """Tell the managers that an MQL waits in the queue: one e-mail to them all, and the
    handoff webhook if one is configured. Each channel at most once per queued handoff.

    Runs outside any transaction (from a Celery task). Returns what was sent this time.
    """
    sent = {"email": False, "slack": False}
    notice = (
        QueueNotice.objects.select_related("handoff__lead__company", "handoff__team")
        .filter(pk=notice_id)
        .first()
    )
    if notice is None:
        return sent
    handoff = notice.handoff
    if not handoff.is_queued:
        return sent  # somebody took it (or decided it) before we got here: nothing to do
    managers = list(selectors.managers_to_notify(team_id=handoff.team_id))
    url = public_url(reverse("handoff:detail", args=[handoff.pk]))
    lead_name = handoff.lead.full_name or handoff.lead.email
    with translation.override(settings.LANGUAGE_CODE):
        context = {
            "handoff": handoff,
            "lead": handoff.lead,
            "team": handoff.team,
            "url": url,
            "inbox_url": public_url(reverse("handoff:inbox")),
        }
        if handoff.team is not None:
            subject = _("MQL waiting in the queue of %(team)s: %(lead)s") % {
                "team": handoff.team.name,
                "lead": lead_name,
            }
            slack_text = _(
                "Nobody in %(team)s could take a new MQL; it waits in the queue: %(lead)s — %(url)s"
            ) % {"team": handoff.team.name, "lead": lead_name, "url": url}
        else:
            subject = _("MQL waiting without a team: %(lead)s") % {"lead": lead_name}
            slack_text = _(
                "A new MQL matched no team; it waits in the queue: %(lead)s — %(url)s"
            ) % {"lead": lead_name, "url": url}
        if handoff.lead.company:
            subject += f" ({handoff.lead.company.name})"
        body = render_to_string("handoff/email/queued.txt", context)
    if managers:
        recipients = [manager.email for manager in managers]
        sent["email"] = send_once(
            QueueNotice,
            notice.pk,
            "email_sent_at",
            lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients),
        )
    webhook = getattr(settings, "HANDOFF_SLACK_WEBHOOK_URL", "")
    if webhook:
        sent["slack"] = send_once(
            QueueNotice, notice.pk, "slack_sent_at", lambda: post_webhook(webhook, slack_text)
        )
    return sent
