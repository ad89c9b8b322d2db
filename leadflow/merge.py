"""Making two leads one person again.

`lead_merge` keeps one lead, fills its empty fields from the other, moves every row that
points at the other lead (events, transitions, external ids, handoffs, outbox messages,
whatever app added a foreign key to Lead) and deletes it, leaving a `LeadMerge` audit row
with a snapshot of it. The move is generic over Lead's reverse relations, so a model added
later is moved too; anything still pointing at the merged lead afterwards aborts the
merge instead of being lost with it.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.forms.models import model_to_dict
from django.utils.translation import gettext as _

from leadflow import locks, reactions
from leadflow.errors import DomainError
from leadflow.lifecycle import Actor
from leadflow.models import DuplicateCandidate, Lead, LeadMerge, Stage, User

# How far along the journey each stage is; a lead never merges into one behind it.
JOURNEY_RANK = {
    Stage.ANONYMOUS: 0,
    Stage.KNOWN: 1,
    Stage.DISQUALIFIED: 1,
    Stage.RECYCLED: 2,
    Stage.MQL: 3,
    Stage.SQL: 4,
    Stage.OPPORTUNITY: 5,
    Stage.CUSTOMER: 6,
    Stage.ADVOCATE: 7,
}
_FILLABLE = (
    "last_name",
    "first_name",
    "last_name_kana",
    "first_name_kana",
    "company",
    "department",
    "job_title",
    "role",
    "phone",
    "source",
    "owner",
)


def merge_survivor(a: Lead, b: Lead) -> tuple[Lead, Lead]:
    """(keep, merge): the lead further along the journey survives; on a tie the older."""
    rank_a, rank_b = JOURNEY_RANK[Stage(a.stage)], JOURNEY_RANK[Stage(b.stage)]
    if rank_a != rank_b:
        return (a, b) if rank_a > rank_b else (b, a)
    return (a, b) if (a.created_at, a.pk) <= (b.created_at, b.pk) else (b, a)


def _snapshot(lead: Lead) -> dict[str, Any]:
    data = model_to_dict(lead)
    data.update(id=lead.pk, created_at=lead.created_at, stage_changed_at=lead.stage_changed_at)
    # Round-trip through the JSON encoder: dates and decimals as strings.
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def _reverse_foreign_keys() -> list[models.Field]:
    """Every foreign key to Lead in any app, hidden ones (related_name="+") included."""
    return [
        relation.field
        for relation in Lead._meta.get_fields(include_hidden=True)
        if isinstance(relation, models.ForeignObjectRel) and relation.one_to_many
    ]


def lead_merge(*, keep: Lead, merge: Lead, actor: User | str) -> LeadMerge:
    if keep.pk == merge.pk:
        raise DomainError(_("A lead cannot be merged into itself."), code="merge_same_lead")
    who = Actor.of(actor)
    with transaction.atomic():
        # Both rows locked, lower id first, so two merges of one pair cannot deadlock.
        locked = locks.leads_in_order([keep.pk, merge.pk])
        if len(locked) != 2:
            raise DomainError(_("One of the two leads no longer exists."), code="not_found")
        keep, merge = locked[keep.pk], locked[merge.pk]
        if JOURNEY_RANK[Stage(merge.stage)] > JOURNEY_RANK[Stage(keep.stage)]:
            raise DomainError(
                _("%(other)s is further along (%(stage)s); merge the other way round.")
                % {"other": merge, "stage": Stage(merge.stage).label},
                code="merge_wrong_direction",
            )
        snapshot = _snapshot(merge)
        merged_email = merge.email
        reactions.run(reactions.LEADS_MERGING, keep=keep, merge=merge)

        # Candidate pairs of the merged lead go with it (the LeadMerge row is the record of
        # this pair; pairs with third leads are found again by the next detection run).
        DuplicateCandidate.objects.filter(models.Q(lead_a=merge) | models.Q(lead_b=merge)).delete()
        moved: dict[str, int] = {}
        for field in _reverse_foreign_keys():
            model = field.model
            if model is DuplicateCandidate:
                continue
            count = model._default_manager.filter(**{field.name: merge}).update(
                **{field.name: keep}
            )
            if count:
                moved[model._meta.label] = moved.get(model._meta.label, 0) + count

        for name in _FILLABLE:
            if not getattr(keep, name) and getattr(merge, name):
                setattr(keep, name, getattr(merge, name))
        keep.attributes = {**merge.attributes, **keep.attributes}
        # Checked before the delete, whose cascade would otherwise drop what is left.
        _assert_nothing_left(merge.pk)
        merge_pk = merge.pk
        # The merged lead's address would collide with the unique index until it is gone.
        merge.delete()
        if not keep.email and merged_email:
            keep.email = merged_email
        keep.save()
        record = LeadMerge.objects.create(
            kept=keep,
            merged_lead_id=merge_pk,
            merged_email=merged_email,
            snapshot=snapshot,
            moved=moved,
            actor_user=who.user,
            actor_system=who.system,
        )
        reactions.run(reactions.LEADS_MERGED, keep=keep, record=record)
    return record


def _assert_nothing_left(merge_pk: int) -> None:
    for field in _reverse_foreign_keys():
        model = field.model
        if model is DuplicateCandidate:
            continue
        if model._default_manager.filter(**{f"{field.name}_id": merge_pk}).exists():
            raise DomainError(
                _("Rows of %(model)s still point at the merged lead; nothing was merged.")
                % {"model": model._meta.verbose_name},
                code="merge_incomplete",
            )
