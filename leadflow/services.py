"""Writes to the core domain other than stage moves (those are in `leadflow.lifecycle`).

Intake adapters, CSV import and the admin all create leads and events through these
functions, so normalisation and duplicate handling happen in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework.authtoken.models import Token

from leadflow.duplicates import duplicate_record_external_id, duplicates_for_lead
from leadflow.errors import DomainError
from leadflow.fits import check_column, check_integer, check_json, check_moment, check_text
from leadflow.lifecycle import lead_transition
from leadflow.models import (
    PERSON_FIELDS,
    Company,
    EngagementEvent,
    EventKind,
    Heartbeat,
    Lead,
    LeadExternalId,
    Stage,
    User,
)
from leadflow.normalize import company_key, format_phone, nfkc, normalize_email

# How far ahead of our clock an event may be dated (the sender's clock may be off).
EVENT_FUTURE_TOLERANCE = timedelta(days=1)

# Lead columns an upsert may set; anything else lands in Lead.attributes.
LEAD_FIELDS = frozenset(PERSON_FIELDS)
COMPANY_FIELDS = frozenset(
    {"name", "name_kana", "domain", "employee_count", "revenue_band", "industry", "prefecture"}
)


@dataclass
class UpsertResult:
    lead: Lead
    created: bool
    # Names of lead/company fields and custom attributes whose value changed; scoring
    # recomputes the fit score only when this is not empty.
    changed: list[str] = field(default_factory=list)


_COMPANY_LOCK_SPACE = 0x4C46_434F  # advisory locks (space, hash) of companies being created


def _company_find(values: dict[str, Any]) -> Company | None:
    if values.get("domain"):
        found = Company.objects.filter(domain=values["domain"]).order_by("pk").first()
        if found is not None:
            return found
    if values.get("name") and company_key(values["name"]):
        return Company.objects.filter(match_key=company_key(values["name"])).order_by("pk").first()
    return None


def _company_create_lock(values: dict[str, Any]) -> bool:
    """Transaction-level advisory locks on the company's domain and name key (PostgreSQL;
    SQLite has one writer at a time). Sorted, so two creators never wait on each other
    in a circle. True when it locked (then look again: the lock may have waited)."""
    if connection.vendor != "postgresql":
        return False
    keys = sorted(
        {
            *([f"domain:{values['domain']}"] if values.get("domain") else []),
            *(
                [f"name:{company_key(values['name'])}"]
                if company_key(values.get("name") or "")
                else []
            ),
        }
    )
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_COMPANY_LOCK_SPACE, key]
            )
    return bool(keys)


def company_find_or_create(*, data: dict[str, Any]) -> Company | None:
    """Find the company by domain, then by its name without legal forms (so 株式会社サンプル
    and (株)サンプル are one company); create it if neither matches.

    Non-empty values in `data` overwrite what is stored: the sender is the freshest source.
    """
    values = _company_values(data)
    if not values.get("name") and not values.get("domain"):
        return None
    company = _company_find(values)
    # Two workers with colleagues from one new company (a trade-show batch) both found
    # nothing and both created it: no unique key can say "same domain or same name". The
    # loser waits for the winner's commit in the lock, then finds its row.
    if company is None and _company_create_lock(values):
        company = _company_find(values)
    if company is None:
        values.setdefault("name", values.get("domain", ""))
        return Company.objects.create(**values)
    # Keep the spelling we have (a variant is how we found the company, not news), unless
    # all we had was the domain standing in for a name.
    if company.name not in ("", company.domain):
        values.pop("name", None)
    changed = [k for k, v in values.items() if getattr(company, k) != v]
    if changed:
        for key in changed:
            setattr(company, key, values[key])
        company.save()
    return company


def _find_lead(email: str, external_ids: dict[str, str]) -> tuple[Lead | None, bool]:
    """The lead, and whether it was locked as it was read (see lead_upsert)."""
    if email:
        by_email = Lead.objects.with_email(email)
        locking = connection.in_atomic_block
        if locking:
            # The update needs the lock anyway: take it with the read, not in a second one.
            by_email = by_email.select_for_update(no_key=True)
        found = by_email.first()
        if found is not None:
            return found, locking
    for system, external_id in external_ids.items():
        link = (
            LeadExternalId.objects.select_related("lead")
            .filter(system=system, external_id=external_id)
            .first()
        )
        if link is not None:
            return link.lead, False
    return None, False


def _apply_values(
    lead: Lead,
    *,
    email: str,
    attributes: dict[str, Any],
    company: dict[str, Any] | None,
) -> list[str]:
    """Set the sender's values on `lead` (in memory); the names of what changed."""
    changed: list[str] = []
    for key, value in attributes.items():
        if value is None:
            continue
        if key in LEAD_FIELDS:
            text = format_phone(str(value)) if key == "phone" else nfkc(str(value)).strip()
            if text and getattr(lead, key) != text:
                setattr(lead, key, text)
                changed.append(key)
        elif lead.attributes.get(key) != value:
            lead.attributes[key] = value
            changed.append(key)
    # Found by external id under an older address: the sender's address wins, unless
    # another lead already owns it (that is a duplicate for marketing to merge).
    if (
        email
        and lead.email != email
        and not Lead.objects.with_email(email).exclude(pk=lead.pk).exists()
    ):
        lead.email = email
        changed.append("email")
    if company:
        found_company = company_find_or_create(data=company)
        if found_company is not None and lead.company_id != found_company.pk:
            lead.company = found_company
            changed.append("company")
    return changed


def _company_values(data: dict[str, Any]) -> dict[str, Any]:
    """The company values as they are stored (see company_find_or_create)."""
    values = {k: v for k, v in data.items() if k in COMPANY_FIELDS and v not in (None, "")}
    if "name" in values:
        values["name"] = nfkc(str(values["name"])).strip()
    if "domain" in values:
        values["domain"] = nfkc(str(values["domain"])).strip().lower()
    return values


def lead_values_check(
    *,
    email: str,
    attributes: dict[str, Any],
    company: dict[str, Any] | None,
    source: str,
    external_ids: dict[str, str],
) -> None:
    """Raise InvalidValue (naming the field: `last_name`, `company.name`, `external_id`,
    `attributes.<key>`) for the first value that does not fit the column it would be
    stored in, in the form it would be stored in (NFKC can lengthen a text)."""
    check_column(Lead, "email", email)
    check_column(Lead, "source", source, field="source")
    for key, value in attributes.items():
        if value is None:
            continue
        if key in LEAD_FIELDS:
            text = format_phone(str(value)) if key == "phone" else nfkc(str(value)).strip()
            check_column(Lead, key, text)
        else:
            check_text(f"attributes.{key}", str(key), max_length=None)
            check_json(f"attributes.{key}", value)
    for key, value in _company_values(company or {}).items():
        if key == "employee_count":
            check_integer("company.employee_count", value)
        else:
            check_column(Company, key, str(value), field=f"company.{key}")
    for system, external_id in external_ids.items():
        check_column(LeadExternalId, "system", system, field="external_id_system")
        check_column(LeadExternalId, "external_id", external_id, field="external_id")


def lead_upsert(
    *,
    email: str = "",
    attributes: dict[str, Any] | None = None,
    company: dict[str, Any] | None = None,
    source: str = "",
    external_ids: dict[str, str] | None = None,
) -> UpsertResult:
    """Create or update a lead by e-mail (case-insensitive, NFKC) or by a known external id.

    Raises DomainError when there is neither an e-mail nor an external id we know: such a
    payload cannot become a lead (the caller records it as failed rather than dropping it),
    and InvalidValue, before anything is read or written, for a value that does not fit
    its column.
    """
    email = normalize_email(email)
    ids = {str(k): str(v) for k, v in (external_ids or {}).items() if v not in (None, "")}
    attributes = dict(attributes or {})
    lead_values_check(
        email=email, attributes=attributes, company=company, source=source, external_ids=ids
    )

    # Inside the caller's transaction a lead found by e-mail comes locked; any other is
    # locked and re-read below.
    lead, locked = _find_lead(email, ids)
    if lead is None and not email:
        raise DomainError(
            _("The payload has no e-mail address and no id of a lead we know."),
            code="no_identity",
        )
    # No savepoint of its own: it only groups the writes, and every caller that goes on
    # after an error (intake per item, CSV per row) already has one around the call.
    with transaction.atomic(savepoint=False):
        created = False
        changed: list[str] = []
        if lead is None:
            # A new lead is inserted with its values at once (one INSERT, no UPDATE after).
            new = Lead(email=email, source=source)
            changed = _apply_values(new, email=email, attributes=attributes, company=company)
            try:
                # Savepoint: two workers creating the same new e-mail at once; the loser
                # of the unique index takes the winner's row instead of failing.
                with transaction.atomic():
                    new.save(force_insert=True)
                lead, created = new, True
            except IntegrityError:
                lead = Lead.objects.with_email(email).get()
        if not created and not locked:
            # Our own new row needs no lock: nobody else can see it before we commit.
            # NO KEY: rows of other leads' work that refer to this one (a duplicate
            # candidate naming both) may still be written; FOR UPDATE made them wait for
            # this whole transaction, and two workers naming each other's lead deadlock.
            lead = Lead.objects.select_for_update(no_key=True).get(pk=lead.pk)
        if not created:
            changed = _apply_values(lead, email=email, attributes=attributes, company=company)
            if changed:
                lead.save()
        for system, external_id in ids.items():
            link, _made = LeadExternalId.objects.select_related("lead").get_or_create(
                system=system, external_id=external_id, defaults={"lead": lead}
            )
            if link.lead_id != lead.pk:
                # The sender says this id is this address, but the id is another lead's:
                # the same person twice. Marketing decides; we never merge silently.
                duplicate_record_external_id(
                    lead=lead, other=link.lead, system=system, external_id=external_id
                )
        if created or {"last_name", "first_name", "phone", "company"} & set(changed):
            duplicates_for_lead(lead)
        if lead.stage == Stage.ANONYMOUS and lead.email:
            # A tracked visitor just told us who they are (typically a form submit).
            lead_transition(
                lead=lead,
                to_stage=Stage.KNOWN,
                actor=f"source:{source}" if source else "intake",
                reason="identified",
                expected_from=Stage.ANONYMOUS,
            )
    return UpsertResult(lead=lead, created=created, changed=changed)


def event_record(
    *,
    lead: Lead,
    kind: str,
    occurred_at: datetime,
    properties: dict[str, Any] | None = None,
    source: str = "",
    external_id: str = "",
    received_at: datetime | None = None,
) -> tuple[EngagementEvent, bool]:
    """Record one engagement event; a redelivered one (same source + external id) is
    returned as it was stored, with created=False, and is not recorded twice."""
    if kind not in EventKind.values:
        raise DomainError(
            _("“%(kind)s” is not an engagement event kind.") % {"kind": kind},
            code="unknown_event_kind",
        )
    if occurred_at.tzinfo is None:
        raise DomainError(_("The event time has no time zone."), code="naive_datetime")
    if occurred_at > timezone.now() + EVENT_FUTURE_TOLERANCE:
        # Decay weighs an event by 2^(age / half-life): one dated years ahead overflows a
        # float (the worker's scoring, and every bulk rescore batch holding that lead in
        # PostgreSQL's POWER), and months ahead make an engagement too big for its column.
        raise DomainError(
            _("The event time %(when)s is in the future.")
            % {"when": timezone.localtime(occurred_at).strftime("%Y-%m-%d %H:%M")},
            code="future_event",
        )
    # Before the first query: a value that does not fit fails here, naming its field,
    # not in the INSERT (which aborts the caller's whole transaction on PostgreSQL).
    check_moment("occurred_at", occurred_at)
    check_column(EngagementEvent, "external_id", external_id, field="id")
    check_column(EngagementEvent, "source", source, field="source")
    check_json("properties", properties or {})
    if external_id:
        existing = EngagementEvent.objects.filter(source=source, external_id=external_id).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            event = EngagementEvent.objects.create(
                lead=lead,
                kind=kind,
                occurred_at=occurred_at,
                properties=properties or {},
                source=source,
                external_id=external_id,
                received_at=received_at,
            )
    except IntegrityError:
        # Another worker stored the same delivery between our check and our insert.
        return EngagementEvent.objects.get(source=source, external_id=external_id), False
    return event, True


# --- API tokens -------------------------------------------------------------------------
# One DRF token per user. Revoking deletes the row, so every later request with the old
# key fails authentication at once (401); there is no cache in between.


def api_token_regenerate(*, user: User) -> Token:
    """Replace the user's token with a new one (the old key stops working at once)."""
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user)


def api_token_revoke(*, user: User) -> bool:
    """Delete the user's token; False when there was none."""
    deleted, _rows = Token.objects.filter(user=user).delete()
    return bool(deleted)


def heartbeat_record(*, name: str, at: datetime | None = None) -> None:
    """Store that `name` (beat) ticked at `at` (now). One row per name, overwritten."""
    Heartbeat.objects.update_or_create(name=name, defaults={"beat_at": at or timezone.now()})
