"""Scoring models (versioned rule sets), their rules, per-lead scores and rescore runs.

A `ScoringModel` is a draft while marketers edit it, then published (exactly one at a
time, enforced by a partial unique index), then archived when a newer one replaces it.
Published and archived models never change, which is what lets a `LeadScore` point at
the model version that made it and be explained from that model's rules later.
"""

from __future__ import annotations

import re
import uuid

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from leadflow.errors import DomainError
from leadflow.japan import join_words
from leadflow.models import Company, EventKind, Lead


class ModelStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")
    ARCHIVED = "archived", _("Archived")


class Operator(models.TextChoices):
    EQUALS = "equals", _("equals")
    ONE_OF = "one_of", _("is one of")
    CONTAINS = "contains", _("contains")
    BETWEEN = "between", _("is a number in the range")
    IS_SET = "is_set", _("is set")
    IS_EMPTY = "is_empty", _("is empty")


class CapPeriod(models.TextChoices):
    DAY = "day", _("per day")
    WEEK = "week", _("per week (Monday to Sunday)")
    MONTH = "month", _("per month")


# Lead and company fields a fit rule may test. Custom attributes are "attributes.<key>".
LEAD_FIELD_PATHS = (
    "email",
    "last_name",
    "first_name",
    "department",
    "job_title",
    "role",
    "phone",
    "source",
)
COMPANY_FIELD_PATHS = (
    "company.name",
    "company.domain",
    "company.employee_count",
    "company.revenue_band",
    "company.industry",
    "company.prefecture",
    "company.region",
)
FIELD_PATHS = LEAD_FIELD_PATHS + COMPANY_FIELD_PATHS
# Keys of custom attributes and event properties: letters (any script), digits, _ and -.
# Restricting them keeps every JSON path we build in SQL a plain quoted key.
JSON_KEY_RE = re.compile(r"^[\w\-]{1,100}$")


def validate_field_path(value: str) -> None:
    if value in FIELD_PATHS:
        return
    if value.startswith("attributes.") and JSON_KEY_RE.match(value[len("attributes.") :]):
        return
    raise ValidationError(
        _("“%(value)s” is not a field a rule can test. Use one of %(fields)s or attributes.<key>."),
        params={"value": value, "fields": ", ".join(FIELD_PATHS)},
    )


def value_label(path: str, value: str) -> str:
    """A rule's value as people read it: the label of a choice field's code (`10b_100b` →
    10億〜100億円, `kanto` → 関東, `executive` → 役員); other values as they are."""
    model, _dot, name = path.rpartition(".")
    target = {"": Lead, "company": Company}.get(model)
    if target is None:
        return value
    try:
        field = target._meta.get_field(name)
    except FieldDoesNotExist:
        return value
    choices = dict(getattr(field, "flatchoices", None) or [])
    return str(choices.get(value, value))


def validate_property_key(value: str) -> None:
    if value and not JSON_KEY_RE.match(value):
        raise ValidationError(
            _("“%(value)s” is not a property name (letters, digits, _ and - only)."),
            params={"value": value},
        )


class ScoringModel(models.Model):
    name = models.CharField(_("name"), max_length=200)
    version = models.PositiveIntegerField(_("version"), unique=True, editable=False)
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=ModelStatus.choices,
        default=ModelStatus.DRAFT,
        editable=False,
    )
    based_on = models.ForeignKey(
        "self",
        verbose_name=_("cloned from"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    notes = models.TextField(_("notes"), blank=True, help_text=_("What changed and why."))
    # MQL policy (article: 属性スコア30点以上 かつ 行動スコア50点以上).
    fit_threshold = models.IntegerField(_("fit threshold"), default=30)
    engagement_threshold = models.IntegerField(_("engagement threshold"), default=50)
    hand_raiser_kind = models.CharField(
        _("hand-raiser event"),
        max_length=30,
        choices=EventKind.choices,
        blank=True,
        help_text=_(
            "A lead with this event (e.g. a consultation request) and at least the "
            "hand-raiser fit becomes an MQL at once. Empty = off."
        ),
    )
    hand_raiser_min_fit = models.IntegerField(_("hand-raiser minimum fit"), default=20)
    recycle_cooldown_days = models.PositiveIntegerField(
        _("cool-down after recycling (days)"),
        default=30,
        help_text=_(
            "A lead that sales sent back to nurture may become an MQL again only this "
            "many days after it was recycled. 0 = at once."
        ),
    )
    created_by = models.ForeignKey(
        "leadflow.User",
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    published_at = models.DateTimeField(_("published"), null=True, blank=True, editable=False)
    archived_at = models.DateTimeField(_("archived"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("scoring model")
        verbose_name_plural = _("scoring models")
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status=ModelStatus.PUBLISHED),
                name="scoring_one_published_model",
            ),
        ]
        permissions = [("publish_scoringmodel", _("Can publish a scoring model"))]

    def __str__(self) -> str:
        return f"v{self.version} {self.name} ({self.get_status_display()})"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            stored = ScoringModel.objects.filter(pk=self.pk).values_list("status", flat=True)
            if stored and stored[0] != ModelStatus.DRAFT:
                # Status moves go through services with queryset.update(); a save() on a
                # published model is an edit, and scores point at this exact version.
                raise DomainError(
                    gettext("Version %(version)s is %(status)s and cannot be edited; clone it.")
                    % {"version": self.version, "status": ModelStatus(stored[0]).label},
                    code="model_read_only",
                )
        if self.version is None:
            last = ScoringModel.objects.aggregate(models.Max("version"))["version__max"]
            self.version = (last or 0) + 1
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.status != ModelStatus.DRAFT:
            raise DomainError(
                gettext("Only draft scoring models can be deleted."), code="model_read_only"
            )
        return super().delete(*args, **kwargs)

    @property
    def is_draft(self) -> bool:
        return self.status == ModelStatus.DRAFT


class _DraftChild(models.Model):
    """A rule or category: editable only while its scoring model is a draft."""

    model_id: int  # the concrete classes' `model` foreign key
    # The same rule or category across versions: a clone copies the key, a new one gets
    # its own. It is how the diff of a draft against the published model tells "points
    # changed" from "one rule removed, another added" (ids and labels both change).
    key = models.UUIDField(_("lineage key"), default=uuid.uuid4, editable=False)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        self._check_draft()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._check_draft()
        return super().delete(*args, **kwargs)

    def _check_draft(self) -> None:
        status = (
            ScoringModel.objects.filter(pk=self.model_id).values_list("status", flat=True).first()
        )
        if status is not None and status != ModelStatus.DRAFT:
            raise DomainError(
                gettext("The rules of a published or archived scoring model cannot change."),
                code="model_read_only",
            )


class FitCategory(_DraftChild):
    """A group of fit rules whose summed points are held between a floor and a ceiling
    (the article's 企業規模 0–20, 業種 0–15, 役職 0–20, 地域 0–5)."""

    model = models.ForeignKey(
        ScoringModel, on_delete=models.CASCADE, related_name="categories", verbose_name=_("model")
    )
    name = models.CharField(_("name"), max_length=100)
    min_points = models.IntegerField(
        _("minimum"), null=True, blank=True, default=0, help_text=_("Empty = no floor.")
    )
    max_points = models.IntegerField(
        _("maximum"), null=True, blank=True, help_text=_("Empty = no ceiling.")
    )
    position = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("fit category")
        verbose_name_plural = _("fit categories")
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["model", "name"], name="scoring_category_name_unique"),
            models.UniqueConstraint(fields=["model", "key"], name="scoring_category_key_unique"),
        ]

    def __str__(self) -> str:
        low = "" if self.min_points is None else self.min_points
        high = "" if self.max_points is None else self.max_points
        return f"{self.name} ({low}–{high})"

    def clean(self) -> None:
        if (
            self.min_points is not None
            and self.max_points is not None
            and self.min_points > self.max_points
        ):
            raise ValidationError({"max_points": _("The maximum is below the minimum.")})


class _Condition(models.Model):
    """Operator + value(s), shared by fit rules (on lead fields) and engagement rules
    (on event properties)."""

    operator = models.CharField(
        _("operator"), max_length=20, choices=Operator.choices, default=Operator.EQUALS
    )
    value = models.TextField(
        _("value"),
        blank=True,
        help_text=_("For “is one of”: one value per line. Letter case is ignored."),
    )
    # "from"/"to" with a context: the plain msgids are a stage change's 変更前/変更後.
    min_value = models.DecimalField(
        pgettext_lazy("range", "from"), max_digits=18, decimal_places=4, null=True, blank=True
    )
    max_value = models.DecimalField(
        pgettext_lazy("range", "to"), max_digits=18, decimal_places=4, null=True, blank=True
    )

    class Meta:
        abstract = True

    def values_list(self) -> list[str]:
        if self.operator == Operator.ONE_OF:
            return [v.strip(" ") for v in self.value.splitlines() if v.strip(" ")]
        return [self.value.strip(" ")]

    def clean_condition(self, *, required: bool) -> None:
        if not required and not self.has_condition():
            return
        op = self.operator
        if op in (Operator.EQUALS, Operator.CONTAINS, Operator.ONE_OF) and not any(
            self.values_list()
        ):
            raise ValidationError({"value": _("This operator needs a value.")})
        if op == Operator.BETWEEN:
            if self.min_value is None and self.max_value is None:
                raise ValidationError({"min_value": _("Give a lower or an upper bound.")})
            if (
                self.min_value is not None
                and self.max_value is not None
                and self.min_value > self.max_value
            ):
                raise ValidationError({"max_value": _("The upper bound is below the lower one.")})

    def has_condition(self) -> bool:
        return True


class FitRule(_DraftChild, _Condition):
    model = models.ForeignKey(
        ScoringModel, on_delete=models.CASCADE, related_name="fit_rules", verbose_name=_("model")
    )
    category = models.ForeignKey(
        FitCategory,
        # RESTRICT: a category in use cannot be deleted on its own, but deleting a whole
        # draft model (which deletes the rules too) is allowed.
        on_delete=models.RESTRICT,
        null=True,
        blank=True,
        related_name="rules",
        verbose_name=_("category"),
    )
    label = models.CharField(_("label"), max_length=200, blank=True)
    field = models.CharField(
        _("field"),
        max_length=120,
        validators=[validate_field_path],
        help_text=_("A lead field, company.<field> or attributes.<key>."),
    )
    points = models.IntegerField(_("points"), help_text=_("May be negative."))
    position = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("fit rule")
        verbose_name_plural = _("fit rules")
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["model", "key"], name="scoring_fitrule_key_unique"),
        ]

    def __str__(self) -> str:
        return self.label or self.describe()

    def describe(self) -> str:
        if self.operator == Operator.BETWEEN:
            low = "" if self.min_value is None else f"{self.min_value.normalize():f}"
            high = "" if self.max_value is None else f"{self.max_value.normalize():f}"
            return f"{self.field} {low}–{high}"
        if self.operator in (Operator.IS_SET, Operator.IS_EMPTY):
            return f"{self.field} {self.get_operator_display()}"
        values = [value_label(self.field, value) for value in self.values_list()]
        return f"{self.field} {self.get_operator_display()} {join_words(values)}"

    def clean(self) -> None:
        self.clean_condition(required=True)
        if self.category is not None and self.category.model_id != self.model_id:
            raise ValidationError({"category": _("The category belongs to another model.")})


class EngagementRule(_DraftChild, _Condition):
    """Points per event of one kind, optionally only when an event property matches.

    For one event the first matching rule (by order) counts, so a specific rule
    ("page view, url contains /product") placed above a general one ("page view") wins.
    """

    model = models.ForeignKey(
        ScoringModel,
        on_delete=models.CASCADE,
        related_name="engagement_rules",
        verbose_name=_("model"),
    )
    label = models.CharField(_("label"), max_length=200, blank=True)
    kind = models.CharField(_("event"), max_length=30, choices=EventKind.choices)
    property_key = models.CharField(
        _("event property"),
        max_length=100,
        blank=True,
        validators=[validate_property_key],
        help_text=_("Optional condition on the event, e.g. url. Empty = every event."),
    )
    points = models.IntegerField(_("points per event"), help_text=_("May be negative."))
    cap_points = models.PositiveIntegerField(
        _("cap"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("At most this many points (in absolute value) per period. Empty = no cap."),
    )
    cap_period = models.CharField(
        _("cap period"), max_length=10, choices=CapPeriod.choices, default=CapPeriod.DAY
    )
    half_life_days = models.PositiveIntegerField(
        _("half-life (days)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Points lose half their value after this many days. Empty = no decay."),
    )
    position = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("engagement rule")
        verbose_name_plural = _("engagement rules")
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "key"], name="scoring_engagementrule_key_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.label or self.describe()

    def has_condition(self) -> bool:
        return bool(self.property_key)

    def describe(self) -> str:
        text = str(EventKind(self.kind).label) if self.kind in EventKind.values else self.kind
        if self.property_key:
            if self.operator in (Operator.IS_SET, Operator.IS_EMPTY):
                text += f" ({self.property_key} {self.get_operator_display()})"
            else:
                text += (
                    f" ({self.property_key} {self.get_operator_display()} "
                    f"{', '.join(self.values_list())})"
                )
        return text

    def clean(self) -> None:
        self.clean_condition(required=False)


class LeadScore(models.Model):
    """A lead's current fit and engagement score under one model version.

    Besides the totals it keeps the running state that lets one new event update the
    score without re-reading the lead's history (see scoring.engine):
    `engagement_state` maps rule id → [count, awarded points before decay, decayed
    value at `computed_at`, current cap period, points awarded in that period].
    """

    lead = models.OneToOneField(
        Lead, on_delete=models.CASCADE, primary_key=True, related_name="score"
    )
    # No index and no database constraint: every bulk batch rewrites `model_id` on every
    # row, and an index on it makes each of those updates a non-HOT one (a new index
    # entry per row, in every index of the table) plus an FK check per row. Nothing looks
    # rows up by model (the queries filter by lead, then compare the model); PROTECT is
    # still enforced by the ORM, the only thing that deletes models.
    model = models.ForeignKey(
        ScoringModel,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="scores",
        verbose_name=_("model"),
        db_index=False,
        db_constraint=False,
    )
    fit = models.IntegerField(_("fit"), default=0)
    engagement = models.IntegerField(_("engagement"), default=0)
    fit_rules = models.JSONField(_("matched fit rules"), default=list, blank=True)
    engagement_state = models.JSONField(_("engagement state"), default=dict, blank=True)
    last_event_at = models.DateTimeField(_("last scored event"), null=True, blank=True)
    hand_raised_at = models.DateTimeField(_("last hand-raiser event"), null=True, blank=True)
    computed_at = models.DateTimeField(_("computed"), default=timezone.now)

    class Meta:
        verbose_name = _("lead score")
        verbose_name_plural = _("lead scores")
        # No secondary index on purpose: every bulk batch rewrites these rows, and with
        # only the primary key indexed PostgreSQL can update them in place (HOT), in the
        # free half of each page the table's fillfactor keeps (migration 0008).

    def __str__(self) -> str:
        return gettext("fit %(fit)s / engagement %(engagement)s") % {
            "fit": self.fit,
            "engagement": self.engagement,
        }


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    SUPERSEDED = "superseded", _("Superseded by a newer model")


class BackgroundRun(models.Model):
    """What a rescore run and a preview run share: when it was asked for, started and
    finished, newest first. `is_active` reads `status`, which each spells with the same
    "queued" and "running"."""

    created_at = models.DateTimeField(_("created"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    status: str

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]

    @property
    def is_active(self) -> bool:
        return self.status in (RunStatus.QUEUED, RunStatus.RUNNING)


class RescoreRun(BackgroundRun):
    """One bulk rescore of every lead under a model. The leads are split by id into
    slices that workers score in parallel, batch by batch; see RescoreSlice."""

    model = models.ForeignKey(
        ScoringModel, on_delete=models.CASCADE, related_name="runs", verbose_name=_("model")
    )
    status = models.CharField(
        _("status"), max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED
    )
    total = models.PositiveIntegerField(_("leads"), default=0)
    done = models.PositiveIntegerField(_("scored"), default=0)
    moved_to_mql = models.PositiveIntegerField(_("moved to MQL"), default=0)

    class Meta(BackgroundRun.Meta):
        verbose_name = _("rescore run")
        verbose_name_plural = _("rescore runs")

    def __str__(self) -> str:
        return gettext("Rescore #%(id)s for v%(version)s") % {
            "id": self.pk,
            "version": self.model.version,
        }

    @property
    def percent(self) -> int:
        if not self.total:
            return 100 if self.status == RunStatus.DONE else 0
        return min(100, round(100 * self.done / self.total))


class RescoreSlice(models.Model):
    """A range of lead ids (lower, upper] of one run, scored in id order from `cursor`.

    A worker takes an unfinished slice with SELECT ... FOR UPDATE SKIP LOCKED, scores one
    batch and moves the cursor in the same commit: two workers never share a slice, and
    a crashed batch is simply done again."""

    run = models.ForeignKey(RescoreRun, on_delete=models.CASCADE, related_name="slices")
    lower = models.BigIntegerField(_("after lead id"))
    # Empty on the last slice: leads created while the run goes are included too.
    upper = models.BigIntegerField(_("up to lead id"), null=True, blank=True)
    cursor = models.BigIntegerField(_("last lead id"))
    finished = models.BooleanField(_("finished"), default=False)

    class Meta:
        verbose_name = _("rescore slice")
        verbose_name_plural = _("rescore slices")
        ordering = ["lower"]

    def __str__(self) -> str:
        return f"({self.lower}, {self.upper or '∞'}]"


# --- the preview of a draft, computed by a background job ---------------------------


class PreviewStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")


class PreviewRun(BackgroundRun):
    """One computation of a draft's preview and backtest, kept with the draft.

    `fingerprint` is a digest of everything that changes a score or an outcome (the
    draft's rules, categories, caps, decay, thresholds, hand-raiser and cool-down, and
    which model it is compared with): the stored result stands for the draft as long as
    the draft's fingerprint is this one, so reopening the preview reads it instead of
    scoring a million leads again. A new run deletes the draft's older ones.

    The job scores the leads in id order, batch by batch, into DraftLeadScore (now) and
    DraftHandoffScore (as of each handoff), in slices that workers take in parallel
    (PreviewSlice). The totals the page shows are summed once at the end into `summary`.
    """

    model = models.ForeignKey(
        ScoringModel,
        on_delete=models.CASCADE,
        related_name="preview_runs",
        verbose_name=_("draft"),
    )
    # The published model the draft was compared with (itself when none was published).
    baseline = models.ForeignKey(
        ScoringModel,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("compared with"),
    )
    fingerprint = models.CharField(_("fingerprint"), max_length=64)
    status = models.CharField(
        _("status"), max_length=20, choices=PreviewStatus.choices, default=PreviewStatus.QUEUED
    )
    as_of = models.DateTimeField(_("scores as of"))
    # Leads to score now / leads handed to sales (the backtest's), and how many are done.
    total = models.PositiveIntegerField(_("leads"), default=0)
    done = models.PositiveIntegerField(_("scored"), default=0)
    history_total = models.PositiveIntegerField(_("leads handed to sales"), default=0)
    history_done = models.PositiveIntegerField(_("handed leads scored"), default=0)
    # Leads created after the run started are not in it: it is a picture as of `as_of`.
    upto = models.BigIntegerField(_("up to lead id"), default=0)
    summary = models.JSONField(_("summary"), default=dict, blank=True)
    created_by = models.ForeignKey(
        "leadflow.User",
        verbose_name=_("started by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta(BackgroundRun.Meta):
        verbose_name = _("preview run")
        verbose_name_plural = _("preview runs")

    def __str__(self) -> str:
        return gettext("Preview #%(id)s of v%(version)s") % {
            "id": self.pk,
            "version": self.model.version,
        }

    @property
    def percent(self) -> int:
        if self.status == PreviewStatus.DONE:
            return 100
        units = self.total + self.history_total
        if not units:
            return 0
        # Never 100 before the summary is written: the page would offer a result too soon.
        return min(99, (100 * (self.done + self.history_done)) // units)


class PreviewSlice(models.Model):
    """A range of lead ids (lower, upper] of one preview run, scored in id order from
    `cursor`: first every lead's scores now, then (phase "history") its handed leads as
    of their handoff. A worker takes an unfinished slice with SELECT ... FOR UPDATE SKIP
    LOCKED and moves the cursor in the batch's commit, as the rescore's slices do."""

    run = models.ForeignKey(PreviewRun, on_delete=models.CASCADE, related_name="slices")
    lower = models.BigIntegerField(_("after lead id"))
    upper = models.BigIntegerField(_("up to lead id"))
    cursor = models.BigIntegerField(_("last lead id"))
    phase = models.CharField(_("phase"), max_length=20, default="now")
    finished = models.BooleanField(_("finished"), default=False)

    class Meta:
        verbose_name = _("preview slice")
        verbose_name_plural = _("preview slices")
        ordering = ["lower"]

    def __str__(self) -> str:
        return f"({self.lower}, {self.upper}] {self.phase}"


class DraftLeadScore(models.Model):
    """A lead's scores under the draft and under the model it is compared with, as of
    the preview run, and what publishing would do with it under each (selectors.OUTCOMES;
    NULL: it does not meet that model's MQL policy).

    No foreign key constraint to the lead: a million rows are written per run and a
    lead's deletion need not look through them; every read joins the lead, so the rows
    of a deleted lead drop out, and they go with the run."""

    pk = models.CompositePrimaryKey("run", "lead")
    run = models.ForeignKey(PreviewRun, on_delete=models.CASCADE, related_name="+")
    lead = models.ForeignKey(
        Lead, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    fit = models.IntegerField(_("fit"))
    engagement = models.IntegerField(_("engagement"))
    hand_raised_at = models.DateTimeField(_("last hand-raiser event"), null=True)
    # NULL, not "": SQL compares outcomes with IS NULL, as the live preview does.
    outcome = models.CharField(_("outcome"), max_length=20, null=True)  # noqa: DJ001
    published_fit = models.IntegerField(_("published fit"))
    published_engagement = models.IntegerField(_("published engagement"))
    published_hand_raised_at = models.DateTimeField(null=True)
    published_outcome = models.CharField(max_length=20, null=True)  # noqa: DJ001

    class Meta:
        verbose_name = _("draft lead score")
        verbose_name_plural = _("draft lead scores")

    def __str__(self) -> str:
        return f"{self.lead_id}: {self.fit}/{self.engagement}"


class DraftHandoffScore(models.Model):
    """A lead handed to sales, scored under both models as of its handoff (its first move
    to MQL or SQL: events up to then only, and the fit it had then), with what sales
    decided later. `fit_from_snapshot` is false for a lead handed over before fit
    snapshots were kept: its fit is today's."""

    pk = models.CompositePrimaryKey("run", "lead")
    run = models.ForeignKey(PreviewRun, on_delete=models.CASCADE, related_name="+")
    lead = models.ForeignKey(
        Lead, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    handed_at = models.DateTimeField(_("handed to sales"))
    fit = models.IntegerField(_("fit"))
    engagement = models.IntegerField(_("engagement"))
    hand_raised_at = models.DateTimeField(_("last hand-raiser event"), null=True)
    qualifies = models.BooleanField(_("meets the draft's MQL policy"))
    published_fit = models.IntegerField(_("published fit"))
    published_engagement = models.IntegerField(_("published engagement"))
    published_hand_raised_at = models.DateTimeField(null=True)
    published_qualifies = models.BooleanField(_("meets the published MQL policy"))
    won = models.BooleanField(_("became SQL or customer"))
    rejected = models.BooleanField(_("rejected by sales"))
    fit_from_snapshot = models.BooleanField(_("fit as it was"))
    # What the calibration reads besides the scores (scoring.calibration): sales gave a
    # verdict (moved it out of MQL, or it went straight to SQL or beyond), it became a
    # customer, and it has events only after its handoff (its history then is missing).
    decided = models.BooleanField(_("decided by sales"), default=False)
    customer = models.BooleanField(_("became a customer"), default=False)
    history_missing = models.BooleanField(_("events only after the handoff"), default=False)
    # What the suggestions read (scoring.suggestions): lost after it became SQL, and for
    # a decided lead each model's engagement per rule at the handoff, in the shape of
    # LeadScore.engagement_state (rule id → [count, points, decayed value, ...]).
    lost = models.BooleanField(_("lost after SQL"), default=False)
    engagement_state = models.JSONField(_("engagement per rule"), null=True)
    published_engagement_state = models.JSONField(null=True)

    class Meta:
        verbose_name = _("draft handoff score")
        verbose_name_plural = _("draft handoff scores")

    def __str__(self) -> str:
        return f"{self.lead_id} at {self.handed_at:%Y-%m-%d}: {self.fit}/{self.engagement}"


# --- the fit a lead had when it was handed to sales -----------------------------------


def snapshot_column(path: str) -> str:
    """The FitSnapshot column holding a fit rule's field: `company.industry` →
    `company_industry`; lead fields and `attributes` keep their names."""
    return path.replace(".", "_")


class FitSnapshot(models.Model):
    """The lead's scored attributes (every field a fit rule may test, and the custom
    attributes) at the moment it became an MQL, so a backtest scores it with the fit it
    had then, whatever was edited since. Taken by `scoring.services.fit_snapshot_take`
    where the handoff is created; keyed by that moment (the MQL transition's time)."""

    # Indexed by the (lead, taken_at) constraint.
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="+", db_index=False)
    taken_at = models.DateTimeField(_("taken"))
    email = models.TextField(blank=True)
    last_name = models.TextField(blank=True)
    first_name = models.TextField(blank=True)
    department = models.TextField(blank=True)
    job_title = models.TextField(blank=True)
    role = models.TextField(blank=True)
    phone = models.TextField(blank=True)
    source = models.TextField(blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    # Empty when the lead had no company then: live scoring reads NULL there, and no
    # condition tells an empty string from NULL (equals/one of need a value, is set/is
    # empty trim, a range needs a number).
    company_name = models.TextField(blank=True)
    company_domain = models.TextField(blank=True)
    company_employee_count = models.PositiveIntegerField(null=True, blank=True)
    company_revenue_band = models.TextField(blank=True)
    company_industry = models.TextField(blank=True)
    company_prefecture = models.TextField(blank=True)
    company_region = models.TextField(blank=True)

    class Meta:
        verbose_name = _("fit snapshot")
        verbose_name_plural = _("fit snapshots")
        constraints = [
            models.UniqueConstraint(
                fields=["lead", "taken_at"], name="scoring_fitsnapshot_one_per_moment"
            ),
        ]

    def __str__(self) -> str:
        return gettext("Fit of lead %(lead)s at %(at)s") % {
            "lead": self.lead_id,
            "at": self.taken_at,
        }
