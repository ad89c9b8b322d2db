"""The record of every erasure: who asked, who ran it, when, and how many rows in which
places were touched. It holds no personal data itself: the subject is the lead's id
(the anonymous row stays) and a keyed digest of the address, so "was X erased?" can be
answered by whoever is given X, and by nobody else."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ErasureRequest(models.Model):
    subject_lead_id = models.BigIntegerField(_("lead id"), null=True, blank=True, db_index=True)
    subject_digest = models.CharField(
        _("e-mail digest"), max_length=64, blank=True, db_index=True, editable=False
    )
    requested_by = models.CharField(
        _("requested by"),
        max_length=200,
        help_text=_(
            "Who asked and how, e.g. “data subject, mail of 2026-11-02, ticket 4711”. "
            "Not the person's name or address."
        ),
    )
    requested_at = models.DateTimeField(_("requested"), default=timezone.now)
    executed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("executed by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    executed_by_system = models.CharField(_("executed by (system)"), max_length=100, blank=True)
    executed_at = models.DateTimeField(_("executed"), default=timezone.now)
    counts = models.JSONField(_("rows touched"), default=dict)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("erasure request")
        verbose_name_plural = _("erasure requests")
        ordering = ["-executed_at", "-id"]
        permissions = [("export_person", _("Can export all data held about a person"))]

    def __str__(self) -> str:
        return f"#{self.pk} lead {self.subject_lead_id or '—'} ({self.executed_at:%Y-%m-%d})"

    @property
    def executed_by_display(self) -> str:
        return str(self.executed_by) if self.executed_by_id else self.executed_by_system

    @property
    def rows_touched(self) -> int:
        return sum(int(value) for value in (self.counts or {}).values())
