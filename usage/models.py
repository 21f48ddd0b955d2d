from dataclasses import dataclass
from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.memo import VersionedMemo
from subscriptions.models import Customer, Plan


class Aggregation(models.TextChoices):
    SUM = "sum", _("Sum of quantity")
    COUNT = "count", _("Count of events")
    MAX = "max", _("Maximum quantity")
    UNIQUE_COUNT = "unique_count", _("Count of unique property values")


class Meter(models.Model):
    """What is measured (API calls, storage GB, seats) and how a period's events add up."""

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    aggregation = models.CharField(_("aggregation"),
        max_length=16, choices=Aggregation.choices, default=Aggregation.SUM)
    # unique_count counts distinct values of this key in the event's properties (e.g. "user_id").
    unique_property = models.CharField(_("unique property"), max_length=100, blank=True)
    unit = models.CharField(_("unit"), max_length=32, default="unit")
    # When set, recording an event debits quantity x this many prepaid credits at once.
    credits_per_unit = models.DecimalField(_("credits per unit"),
        max_digits=12, decimal_places=4, null=True, blank=True)
    is_active = models.BooleanField(_("is active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("meter")
        verbose_name_plural = _("meters")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(aggregation__in=Aggregation.values), name="meter_aggregation_valid"),
            models.CheckConstraint(condition=~Q(aggregation="unique_count") | ~Q(unique_property=""),
                                   name="meter_unique_count_needs_property"),
            models.CheckConstraint(condition=Q(credits_per_unit__isnull=True) | Q(credits_per_unit__gte=0),
                                   name="meter_credits_per_unit_non_negative"),
        ]

    def __str__(self) -> str:
        return self.code


class MeterPrice(models.Model):
    """What a plan charges in arrears for a meter's usage beyond what the plan includes."""

    plan = models.ForeignKey(Plan, verbose_name=_("plan"), on_delete=models.CASCADE, related_name="meter_prices")
    meter = models.ForeignKey(Meter, verbose_name=_("meter"), on_delete=models.PROTECT, related_name="prices")
    # Decimal minor units per unit: $0.0004 per call is 0.04 cents, which no integer can hold.
    unit_amount = models.DecimalField(_("unit amount"), max_digits=18, decimal_places=6)
    included_units = models.DecimalField(_("included units"), max_digits=20, decimal_places=6, default=0)

    class Meta:
        verbose_name = _("meter price")
        verbose_name_plural = _("meter prices")
        constraints = [
            models.UniqueConstraint(fields=["plan", "meter"], name="meter_price_one_per_plan_meter"),
            models.CheckConstraint(condition=Q(unit_amount__gte=0), name="meter_price_unit_amount_non_negative"),
            models.CheckConstraint(condition=Q(included_units__gte=0), name="meter_price_included_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.plan.code}/{self.meter.code}: {self.unit_amount}"


# The text dimensions of a usage event (and the name of each one's index).
TEXT_DIMENSIONS = ("request_id", "batch_id", "endpoint", "language_code", "category")
# The numeric ones, totalled by usage summaries.
NUMERIC_DIMENSIONS = ("tokens_used", "response_time_ms", "cost")


class UsageEvent(models.Model):
    customer = models.ForeignKey(Customer, verbose_name=_("customer"),
        on_delete=models.PROTECT, related_name="usage_events")
    meter = models.ForeignKey(Meter, verbose_name=_("meter"), on_delete=models.PROTECT, related_name="events")
    # Decimal: usage such as GB-hours is fractional, and sums must be exact to be billed.
    quantity = models.DecimalField(_("quantity"), max_digits=20, decimal_places=6, default=1)
    occurred_at = models.DateTimeField(_("occurred at"))
    # Clients retry; the unique (customer, key) constraint makes a retried event a no-op.
    idempotency_key = models.CharField(_("idempotency key"), max_length=255)
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    # Typed dimensions of AI-billing usage (what a model call reports), columns rather than `properties` so
    # they are checked on the way in, summed exactly and grouped with an index. All optional; text ones
    # are '' when not sent, with a database default so COPY and bulk writers that omit them still work.
    tokens_used = models.BigIntegerField(_("tokens used"), null=True, blank=True)
    response_time_ms = models.IntegerField(_("response time ms"), null=True, blank=True)
    # What the call cost the customer's provider, in Decimal minor units of the customer's currency (0.1 is
    # a tenth of a cent): per-call costs are fractions of a cent, which no integer holds.
    cost = models.DecimalField(_("cost"), max_digits=20, decimal_places=6, null=True, blank=True)
    # The client's own ids, to find every event of one request or one batch job.
    request_id = models.CharField(_("request id"), max_length=255, blank=True, default="", db_default="")
    batch_id = models.CharField(_("batch id"), max_length=255, blank=True, default="", db_default="")
    endpoint = models.CharField(_("endpoint"), max_length=100, blank=True, default="", db_default="")
    # BCP 47 tag (en, ar, pt-BR).
    language_code = models.CharField(_("language code"), max_length=35, blank=True, default="", db_default="")
    category = models.CharField(_("category"), max_length=100, blank=True, default="", db_default="")

    class Meta:
        verbose_name = _("usage event")
        verbose_name_plural = _("usage events")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            # Period aggregation: WHERE customer=? AND meter=? AND occurred_at in [start, end).
            models.Index(fields=["customer", "meter", "occurred_at"], name="usage_customer_meter_time"),
            models.Index(fields=["meter", "occurred_at"], name="usage_meter_time"),
            # Lookups and groupings by dimension within a customer. Partial: events that do not carry the
            # dimension (most metering) cost ingestion nothing for its index.
            *[models.Index(fields=["customer", name, "occurred_at"], name=f"usage_{name}",
                           condition=~Q(**{name: ""})) for name in TEXT_DIMENSIONS],
        ]
        constraints = [
            models.UniqueConstraint(fields=["customer", "idempotency_key"], name="usage_idempotency_per_customer"),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="usage_quantity_non_negative"),
            models.CheckConstraint(condition=Q(tokens_used__isnull=True) | Q(tokens_used__gte=0),
                                   name="usage_tokens_non_negative"),
            models.CheckConstraint(condition=Q(response_time_ms__isnull=True) | Q(response_time_ms__gte=0),
                                   name="usage_response_time_non_negative"),
            models.CheckConstraint(condition=Q(cost__isnull=True) | Q(cost__gte=0), name="usage_cost_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.meter_id} x{self.quantity} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class ThresholdKind(models.TextChoices):
    # The meter's aggregated usage in the period reaches `value` units.
    UNITS = "units", _("Units of the meter")
    # The usage reaches `value` percent of the units the plan includes for the meter (MeterPrice).
    INCLUDED_PERCENT = "included_percent", _("Percent of the included units")
    # The period's usage charge for the meter reaches `value` minor units of the plan's currency.
    CHARGE = "charge", _("Usage charge (minor units)")
    # The customer's credit balance falls to `value` credits or below (no meter).
    CREDIT_BALANCE = "credit_balance", _("Credit balance at or below")


class UsageThresholdQuerySet(models.QuerySet):
    # Bulk writes (the admin's "delete selected", `.update()`) tell the debits' memo too.
    def update(self, **kwargs):
        result = super().update(**kwargs)
        CREDIT_THRESHOLDS_MEMO.changed()
        return result

    def delete(self):
        result = super().delete()
        CREDIT_THRESHOLDS_MEMO.changed()
        return result


class UsageThreshold(models.Model):
    """A level that, once crossed in a billing period, alerts the customer (outbound webhook + email) once
    per period; a hard cap also refuses the usage that would pass it (docs/billing.md, "Usage alerts and
    spend caps"). Defined for a plan (every customer on it) or for one customer."""

    plan = models.ForeignKey(Plan, verbose_name=_("plan"),
        on_delete=models.CASCADE, null=True, blank=True, related_name="usage_thresholds")
    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.CASCADE, null=True, blank=True,
                                 related_name="usage_thresholds")
    # Null only for credit-balance thresholds, which are about the balance rather than one meter.
    meter = models.ForeignKey(Meter, verbose_name=_("meter"),
        on_delete=models.CASCADE, null=True, blank=True, related_name="thresholds")
    kind = models.CharField(_("kind"), max_length=20, choices=ThresholdKind.choices)
    # Units, percent, minor units or credits depending on `kind` (Decimal: units and percents are fractional).
    value = models.DecimalField(_("value"), max_digits=20, decimal_places=6)
    # Refuse (402) a batch whose events would take the period's usage past the threshold, atomically with
    # the ledger that bills them; meter kinds only (the credit ledger already refuses overdrafts).
    hard_cap = models.BooleanField(_("hard cap"), default=False)
    name = models.CharField(_("name"),
        max_length=100, blank=True, help_text=_("Shown in alerts and in the 402 that names the cap."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = UsageThresholdQuerySet.as_manager()

    class Meta:
        verbose_name = _("usage threshold")
        verbose_name_plural = _("usage thresholds")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=ThresholdKind.values), name="usage_threshold_kind_valid"),
            models.CheckConstraint(condition=Q(plan__isnull=True, customer__isnull=False)
                                   | Q(plan__isnull=False, customer__isnull=True),
                                   name="usage_threshold_plan_xor_customer"),
            models.CheckConstraint(condition=Q(kind="credit_balance", meter__isnull=True, hard_cap=False)
                                   | (~Q(kind="credit_balance") & Q(meter__isnull=False)),
                                   name="usage_threshold_meter_matches_kind"),
            models.CheckConstraint(condition=Q(value__gte=0), name="usage_threshold_value_non_negative"),
        ]

    def __str__(self) -> str:
        label = self.name or f"{self.meter.code if self.meter_id else 'credits'} {self.kind} {self.value:g}"
        return f"{label}{' (hard cap)' if self.hard_cap else ''}"

    # Every writer (services, the admin, the API) saves or deletes through these or the queryset above.
    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        CREDIT_THRESHOLDS_MEMO.changed()

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        CREDIT_THRESHOLDS_MEMO.changed()
        return result


@dataclass(frozen=True)
class CreditLevel:
    """A credit-balance threshold as every credit debit checks it (usage.thresholds)."""
    threshold_id: int
    plan_id: int | None
    customer_id: int | None
    value: Decimal


def _credit_levels_read() -> tuple[CreditLevel, ...]:
    return tuple(CreditLevel(*row) for row in UsageThreshold.objects.filter(kind=ThresholdKind.CREDIT_BALANCE)
                 .order_by("pk").values_list("pk", "plan_id", "customer_id", "value"))


# Every credit-balance threshold's level, read by every credit debit (usage.thresholds): kept per process
# and reloaded only after a threshold changes (core.memo), so a debit that crosses none costs no query.
CREDIT_THRESHOLDS_MEMO: VersionedMemo[tuple[CreditLevel, ...]] = VersionedMemo(
    "usage.credit_balance_thresholds", load=_credit_levels_read)


class UsageAlert(models.Model):
    """A threshold crossed by a customer in a period: written in the transaction of the usage that crossed
    it, so never for a rolled-back batch; unique per (threshold, customer, period), so it fires once."""

    threshold = models.ForeignKey(UsageThreshold, verbose_name=_("threshold"),
        on_delete=models.CASCADE, related_name="alerts")
    customer = models.ForeignKey(Customer, verbose_name=_("customer"),
        on_delete=models.CASCADE, related_name="usage_alerts")
    period_start = models.DateTimeField(_("period start"))
    # What the usage (or balance) was right after the crossing, for the alert's text and the log.
    observed = models.DecimalField(_("observed"), max_digits=20, decimal_places=6)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("usage alert")
        verbose_name_plural = _("usage alerts")
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["threshold", "customer", "period_start"],
                                               name="usage_alert_once_per_period")]

    def __str__(self) -> str:
        return f"{self.threshold} for {self.customer_id} at {self.observed:g}"
