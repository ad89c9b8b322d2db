"""Finding leads that are probably one person.

Evidence kinds: the same phone number (any spelling), the same name at the same company
(width/space-insensitive), and an external id that one system reports for an address
another lead already has. Detection is set-based (GROUP BY on the stored match keys) so
it scales to the whole table; `duplicates_for_lead` checks one lead on intake.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Q

from leadflow.models import DuplicateCandidate, Lead

PHONE = "same_phone"
NAME_COMPANY = "same_name_and_company"
EXTERNAL_ID = "same_external_id"


# A new lead is compared with at most this many of the latest leads per kind of evidence.
# Intake checks every lead it creates: unbounded, a batch of one person's name at one
# company (or one shared switchboard number) made each new lead read and pair with all
# the earlier ones, so a batch cost grew with its square. The group stays connected
# through the latest ones, and marketing merges it as one.
MAX_MATCHES = 20
_PAIRS_PER_QUERY = 200


def _extend(candidate: DuplicateCandidate, evidence: list[dict[str, Any]]) -> None:
    new = [item for item in evidence if item not in candidate.evidence]
    if new and candidate.status == DuplicateCandidate.Status.OPEN:
        candidate.evidence = [*candidate.evidence, *new]
        candidate.save(update_fields=["evidence"])


def _record_one(a: int, b: int, evidence: list[dict[str, Any]]) -> int:
    candidate = DuplicateCandidate.objects.filter(lead_a_id=a, lead_b_id=b).first()
    if candidate is None:
        try:
            with transaction.atomic():
                DuplicateCandidate.objects.create(lead_a_id=a, lead_b_id=b, evidence=evidence)
            return 1
        except IntegrityError:  # found by another worker at the same moment
            candidate = DuplicateCandidate.objects.get(lead_a_id=a, lead_b_id=b)
    _extend(candidate, evidence)
    return 0


def _record(pairs: dict[tuple[int, int], list[dict[str, Any]]]) -> int:
    """Create or extend candidates; returns how many pairs are new. Set-based: one query
    for the pairs that exist and one INSERT for the new ones per 200 pairs."""
    ordered: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for (a, b), evidence in pairs.items():
        ordered[(min(a, b), max(a, b))].extend(evidence)
    created = 0
    keys = list(ordered)
    for start in range(0, len(keys), _PAIRS_PER_QUERY):
        chunk = keys[start : start + _PAIRS_PER_QUERY]
        wanted = Q()
        for a, b in chunk:
            wanted |= Q(lead_a_id=a, lead_b_id=b)
        existing = {
            (c.lead_a_id, c.lead_b_id): c for c in DuplicateCandidate.objects.filter(wanted)
        }
        new = [pair for pair in chunk if pair not in existing]
        try:
            with transaction.atomic():
                DuplicateCandidate.objects.bulk_create(
                    [DuplicateCandidate(lead_a_id=a, lead_b_id=b, evidence=ordered[(a, b)])
                     for a, b in new]
                )  # fmt: skip
            created += len(new)
        except IntegrityError:
            # Another worker found one of these pairs meanwhile: pair by pair, as it was.
            created += sum(_record_one(a, b, ordered[(a, b)]) for a, b in new)
        for pair, candidate in existing.items():
            _extend(candidate, ordered[pair])
    return created


def _pairs_from_groups(rows, kind: str, describe) -> dict[tuple[int, int], list[dict]]:
    groups: dict[Any, list[int]] = defaultdict(list)
    for key, pk in rows:
        groups[key].append(pk)
    pairs: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for key, pks in groups.items():
        pks.sort()
        for i, a in enumerate(pks):
            for b in pks[i + 1 :]:
                pairs[(a, b)].append({"kind": kind, "value": describe(key)})
    return pairs


def duplicates_detect() -> int:
    """Scan every lead; returns the number of new candidate pairs."""
    live = Lead.objects.exclude(stage="disqualified")
    phones = (
        live.exclude(phone_key="")
        .values("phone_key")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("phone_key", flat=True)
    )
    phone_rows = live.filter(phone_key__in=phones).values_list("phone_key", "pk")
    names = (
        live.exclude(name_key="")
        .filter(company__isnull=False)
        .values("name_key", "company_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    wanted = {(row["name_key"], row["company_id"]) for row in names}
    name_rows = []
    keys = sorted({name for name, _company in wanted})
    for start in range(0, len(keys), 500):  # bounded IN lists for SQLite's variable limit
        rows = live.filter(name_key__in=keys[start : start + 500]).values_list(
            "name_key", "company_id", "pk"
        )
        name_rows += [((n, c), pk) for n, c, pk in rows if (n, c) in wanted]
    pairs = _pairs_from_groups(phone_rows, PHONE, lambda key: key)
    for pair, evidence in _pairs_from_groups(name_rows, NAME_COMPANY, lambda key: key[0]).items():
        pairs.setdefault(pair, []).extend(evidence)
    return _record(pairs)


def duplicates_for_lead(lead: Lead) -> int:
    """Check one lead against the rest (called when intake creates or changes a lead):
    the latest MAX_MATCHES leads with its phone, and with its name at its company."""
    pairs: dict[tuple[int, int], list[dict]] = defaultdict(list)
    others = Lead.objects.exclude(pk=lead.pk).exclude(stage="disqualified")
    if lead.phone_key:
        same_phone = others.filter(phone_key=lead.phone_key).order_by("-pk")[:MAX_MATCHES]
        for pk in same_phone.values_list("pk", flat=True):
            pairs[(lead.pk, pk)].append({"kind": PHONE, "value": lead.phone_key})
    if lead.name_key and lead.company_id:
        same = others.filter(name_key=lead.name_key, company_id=lead.company_id)
        for pk in same.order_by("-pk")[:MAX_MATCHES].values_list("pk", flat=True):
            pairs[(lead.pk, pk)].append({"kind": NAME_COMPANY, "value": lead.name_key})
    return _record(pairs)


def duplicate_record_external_id(*, lead: Lead, other: Lead, system: str, external_id: str) -> int:
    """One system's id arrived with `lead`'s address but already belongs to `other`."""
    if lead.pk == other.pk:
        return 0
    evidence = {"kind": EXTERNAL_ID, "value": f"{system}:{external_id}"}
    return _record({(lead.pk, other.pk): [evidence]})
