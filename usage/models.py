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

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            # Period aggregation: WHERE customer=? AND meter=? AND occurred_at in [start, end).
            models.Index(fields=["customer", "meter", "occurred_at"], name="usage_customer_meter_time"),
            models.Index(fields=["meter", "occurred_at"], name="usage_meter_time"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["customer", "idempotency_key"], name="usage_idempotency_per_customer"),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="usage_quantity_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.meter_id} x{self.quantity} @ {self.occurred_at:%Y-%m-%d %H:%M}"
