"""Merging two leads, from the handoff side: what may not be merged."""

from __future__ import annotations

from django.utils.translation import gettext as _

from handoff.models import (
    Handoff,
    HandoffStatus,
)
from leadflow.errors import DomainError
from leadflow.models import Lead, Stage


def handoff_check_merge(*, keep: Lead, merge: Lead) -> None:
    """Refuse a merge that would leave a lead with two open handoffs, or an open handoff on
    a lead that is no longer an MQL. The fix is a verdict first (e.g. reject as duplicate)."""
    merge_open = Handoff.objects.filter(lead=merge, status=HandoffStatus.OPEN).exists()
    if not merge_open:
        return
    keep_open = Handoff.objects.filter(lead=keep, status=HandoffStatus.OPEN).exists()
    if keep_open or keep.stage != Stage.MQL:
        raise DomainError(
            _(
                "%(lead)s has an open handoff. Close it first (for example reject it as a "
                "duplicate), then merge."
            )
            % {"lead": merge},
            code="merge_open_handoff",
        )
