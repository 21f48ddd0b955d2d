from django.db import models
from django.db.models import Q

from subscriptions.models import Customer, Plan


class Aggregation(models.TextChoices):
    SUM = "sum", "Sum of quantity"
    COUNT = "count", "Count of events"
    MAX = "max", "Maximum quantity"
    UNIQUE_COUNT = "unique_count", "Count of unique property values"


class Meter(models.Model):
    """What is measured (API calls, storage GB, seats) and how a period's events add up."""

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    aggregation = models.CharField(max_length=16, choices=Aggregation.choices, default=Aggregation.SUM)
    # unique_count counts distinct values of this key in the event's properties (e.g. "user_id").
    unique_property = models.CharField(max_length=100, blank=True)
    unit = models.CharField(max_length=32, default="unit")
    # When set, recording an event debits quantity x this many prepaid credits at once.
    credits_per_unit = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
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

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="meter_prices")
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="prices")
    # Decimal minor units per unit: $0.0004 per call is 0.04 cents, which no integer can hold.
    unit_amount = models.DecimalField(max_digits=18, decimal_places=6)
    included_units = models.DecimalField(max_digits=20, decimal_places=6, default=0)

    class Meta:
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
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="usage_events")
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="events")
    # Decimal: usage such as GB-hours is fractional, and sums must be exact to be billed.
    quantity = models.DecimalField(max_digits=20, decimal_places=6, default=1)
    occurred_at = models.DateTimeField()
    # Clients retry; the unique (customer, key) constraint makes a retried event a no-op.
    idempotency_key = models.CharField(max_length=255)
    properties = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    # Typed dimensions of AI-billing usage (what a model call reports), columns rather than `properties` so
    # they are checked on the way in, summed exactly and grouped with an index. All optional; text ones
    # are '' when not sent, with a database default so COPY and bulk writers that omit them still work.
    tokens_used = models.BigIntegerField(null=True, blank=True)
    response_time_ms = models.IntegerField(null=True, blank=True)
    # What the call cost the customer's provider, in Decimal minor units of the customer's currency (0.1 is
    # a tenth of a cent): per-call costs are fractions of a cent, which no integer holds.
    cost = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    # The client's own ids, to find every event of one request or one batch job.
    request_id = models.CharField(max_length=255, blank=True, default="", db_default="")
    batch_id = models.CharField(max_length=255, blank=True, default="", db_default="")
    endpoint = models.CharField(max_length=100, blank=True, default="", db_default="")
    # BCP 47 tag (en, ar, pt-BR).
    language_code = models.CharField(max_length=35, blank=True, default="", db_default="")
    category = models.CharField(max_length=100, blank=True, default="", db_default="")

    class Meta:
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
