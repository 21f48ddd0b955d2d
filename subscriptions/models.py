from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.lookups import LessThan
from django.utils.translation import gettext_lazy as _

from core.audit import AuditRow
from core.utc_parts import UtcDate, UtcDay, UtcMonthIndex, UtcTime
from modules.selectors import features_refused


def _default_currency() -> str:
    return settings.DEFAULT_CURRENCY


class Customer(models.Model):
    """A billing account. Tied to the Django user that signs in to the API for it."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="billing_customer",
    )
    name = models.CharField(_("name"), max_length=200)
    # The name in Arabic script beside the Latin one: Arabic documents show it, falling back to `name`
    # when empty (and English ones fall back to it when `name` is empty), and search finds either.
    # db_default too: rows written by COPY (the benchmarks, bulk seeding) name only the columns they know.
    name_ar = models.CharField(_("name in Arabic"), max_length=200, blank=True, default="", db_default="")
    email = models.EmailField(_("email"), db_index=True)
    # The language of the customer's invoices, emails and API error messages (an Accept-Language header
    # still wins for one request); one of settings.LANGUAGES.
    preferred_language = models.CharField(_("preferred language"),
        max_length=8, choices=settings.LANGUAGES, default="en", db_default="en")
    # Every invoice and payment of a customer is in this currency; mixing currencies on one
    # account makes balances meaningless.
    currency = models.CharField(_("currency"), max_length=3, default=_default_currency)
    # Who the customer is at each payment rail (ids, saved payment method) lives in
    # payments.ProviderAccount: only payments knows the rails.
    # The id the business knows this customer by in its own systems.
    external_id = models.CharField(_("external id"), max_length=255, null=True, blank=True, unique=True)
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="customer_currency_iso"),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class BillingInterval(models.TextChoices):
    MONTH = "month", _("Month")
    YEAR = "year", _("Year")


class Plan(models.Model):
    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    # The plan's name in Arabic script for Arabic invoices and emails; empty falls back to `name`.
    name_ar = models.CharField(_("name in Arabic"), max_length=200, blank=True, default="", db_default="")
    description = models.TextField(_("description"), blank=True)
    # Integer minor units: exact arithmetic and no float drift across thousands of invoices.
    amount = models.BigIntegerField(_("amount"), help_text=_("Price per interval in minor units (999 = $9.99)."))
    currency = models.CharField(_("currency"), max_length=3, default=_default_currency)
    interval = models.CharField(_("interval"),
        max_length=8, choices=BillingInterval.choices, default=BillingInterval.MONTH)
    # Lets one plan bill every 3 months without a third interval value.
    interval_count = models.PositiveSmallIntegerField(_("interval count"), default=1)
    trial_days = models.PositiveSmallIntegerField(_("trial days"), default=0)
    credits_per_period = models.BigIntegerField(_("credits per period"), default=0)
    # False: the period's refill expires at period end; True: unused credits carry over.
    credits_rollover = models.BooleanField(_("credits rollover"), default=False)
    rate_limit_per_minute = models.PositiveIntegerField(_("rate limit per minute"),
        default=0, help_text=_("0 means unlimited."))
    rate_limit_per_hour = models.PositiveIntegerField(_("rate limit per hour"),
        default=0, help_text=_("0 means unlimited."))
    api_calls_per_day = models.PositiveIntegerField(_("API calls per day"),
        default=0, help_text=_("0 means unlimited."))
    # A per-request cap on usage batches (smaller plans send smaller batches); answered 403 naming it.
    usage_batch_max_events = models.PositiveIntegerField(
        _("usage batch max events"),
            default=0, help_text=_("Most usage events one API request may carry; 0 means the API's maximum (1,000)."))
    # Feature codes (e.g. "api_access") checked by entitlements; a list keeps plans self-describing. Only
    # codes enabled modules declare are accepted (`clean`), and each gates a door (docs/modules.md).
    features = models.JSONField(_("features"), default=list, blank=True)
    # What the plan is called at each payment rail lives in payments.ProviderPlanPrice.
    is_active = models.BooleanField(_("is active"),
        default=True, help_text=_("Inactive plans keep subscribers but take no new ones."))
    sort_order = models.PositiveSmallIntegerField(_("sort order"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("plan")
        verbose_name_plural = _("plans")
        ordering = ["sort_order", "amount", "code"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="plan_amount_non_negative"),
            models.CheckConstraint(condition=Q(interval_count__gte=1), name="plan_interval_count_positive"),
            # Ten years at most per period: longer ones would run period arithmetic past the calendar's end
            # for any subscription started in the 9990s and bill nothing a business sells.
            models.CheckConstraint(
                condition=Q(interval=BillingInterval.MONTH, interval_count__lte=120)
                | Q(interval=BillingInterval.YEAR, interval_count__lte=10),
                name="plan_period_at_most_ten_years",
                violation_error_message=_("A billing period is at most 10 years (120 months)."),
            ),
            models.CheckConstraint(condition=Q(credits_per_period__gte=0), name="plan_credits_non_negative"),
            models.CheckConstraint(condition=Q(interval__in=BillingInterval.values), name="plan_interval_valid"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="plan_currency_iso"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_free(self) -> bool:
        return self.amount == 0

    def has_feature(self, code: str) -> bool:
        return code in (self.features or [])

    def clean(self):
        super().clean()
        if not isinstance(self.features, list) or not all(isinstance(f, str) for f in self.features):
            raise ValidationError({"features": ["A list of feature codes."]})
        refused = features_refused(features=self.features)
        if refused:
            raise ValidationError({"features": list(refused.values())})


class SubscriptionStatus(models.TextChoices):
    INCOMPLETE = "incomplete", _("Incomplete")
    TRIALING = "trialing", _("Trialing")
    ACTIVE = "active", _("Active")
    PAST_DUE = "past_due", _("Past due")
    PAUSED = "paused", _("Paused")
    CANCELED = "canceled", _("Canceled")


# Statuses in which a subscription still belongs to its customer; a customer has at most one.
LIVE_SUBSCRIPTION_STATUSES = [
    SubscriptionStatus.INCOMPLETE,
    SubscriptionStatus.TRIALING,
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.PAST_DUE,
    SubscriptionStatus.PAUSED,
]


class Subscription(models.Model):
    customer = models.ForeignKey(Customer, verbose_name=_("customer"),
        on_delete=models.PROTECT, related_name="subscriptions")
    plan = models.ForeignKey(Plan, verbose_name=_("plan"), on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(_("status"),
        max_length=16, choices=SubscriptionStatus.choices, default=SubscriptionStatus.INCOMPLETE)
    # Periods are counted from this instant (Jan 31 renews Feb 28, then Mar 31, not Mar 28).
    billing_cycle_anchor = models.DateTimeField(_("billing cycle anchor"))
    # The billing period is [start, end) in UTC; renewal moves both forward by one interval.
    current_period_start = models.DateTimeField(_("current period start"))
    current_period_end = models.DateTimeField(_("current period end"), db_index=True)
    trial_start = models.DateTimeField(_("trial start"), null=True, blank=True)
    trial_end = models.DateTimeField(_("trial end"), null=True, blank=True)
    cancel_at_period_end = models.BooleanField(_("cancel at period end"), default=False)
    # A downgrade waits for the period end so the customer keeps what it already paid for.
    # Indexed only where set (sub_scheduled_plan): almost every row has none, and the renewal's UPDATE
    # (which moves indexed columns, so is never HOT) would otherwise add an entry for each NULL.
    scheduled_plan = models.ForeignKey(
        Plan, verbose_name=_("scheduled plan"),
            null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False,
    )
    canceled_at = models.DateTimeField(_("canceled at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    paused_at = models.DateTimeField(_("paused at"), null=True, blank=True)
    # Who bills this subscription: "" is our own engine (the billing run invoices, charges and duns it);
    # otherwise the code of a merchant-of-record rail (Lemon Squeezy) that bills the customer itself while
    # we only mirror its state. The run's, dunning's and the forecast's selectors skip every row with a
    # value here; only that rail's webhook services write it (never the API or the admin).
    billed_by = models.CharField(_("billed by"), max_length=32, blank=True, default="", db_default="")
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # The parts of the period end and the anchor that decide on which days the next invoices land (the
    # forecast's equivalence classes, payments.billing.forecast_classes), kept by the database itself
    # from the two columns whoever writes them: one GROUP BY over stored values instead of date
    # arithmetic on every row. Neither SQL nor the ORM can write them.
    period_end_day = models.GeneratedField(
        expression=UtcDate("current_period_end"), output_field=models.DateField(), db_persist=True,
        verbose_name=_("period end (UTC day)"))
    period_end_before_anchor_time = models.GeneratedField(
        expression=LessThan(UtcTime("current_period_end"), UtcTime("billing_cycle_anchor")),
        output_field=models.BooleanField(), db_persist=True,
        verbose_name=_("period ends earlier in the day than the anchor"))
    anchor_day = models.GeneratedField(
        expression=UtcDay("billing_cycle_anchor"), output_field=models.IntegerField(), db_persist=True,
        verbose_name=_("anchor's day of month"))
    anchor_month = models.GeneratedField(
        expression=UtcMonthIndex("billing_cycle_anchor"), output_field=models.IntegerField(), db_persist=True,
        verbose_name=_("anchor's month index"))
    anchor_time = models.GeneratedField(
        expression=UtcTime("billing_cycle_anchor"), output_field=models.TimeField(), db_persist=True,
        verbose_name=_("anchor's time of day (UTC)"))

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-id"]
        # Staff actions in the admin beyond add/change/delete, granted per person.
        permissions = [("cancel_subscription", "Can cancel subscriptions"),
                       ("resume_subscription", "Can resume subscriptions")]
        indexes = [models.Index(fields=["status", "current_period_end"], name="sub_status_period_end"),
                   models.Index(fields=["scheduled_plan"], name="sub_scheduled_plan",
                                condition=Q(scheduled_plan__isnull=False)),
                   # The few mirrored rows, found by dunning's exclusion without scanning the rest.
                   models.Index(fields=["billed_by"], name="sub_billed_elsewhere", condition=~Q(billed_by=""))]
        constraints = [
            models.CheckConstraint(
                condition=Q(current_period_end__gt=models.F("current_period_start")), name="sub_period_ordered",
            ),
            models.CheckConstraint(condition=Q(status__in=SubscriptionStatus.values), name="sub_status_valid"),
            models.UniqueConstraint(
                fields=["customer"], condition=Q(status__in=LIVE_SUBSCRIPTION_STATUSES),
                name="sub_one_live_per_customer",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.customer.name} on {self.plan.code} ({self.status})"

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_SUBSCRIPTION_STATUSES

    @property
    def is_mirrored(self) -> bool:
        """Billed by a merchant-of-record rail: never invoiced, charged or dunned by us."""
        return bool(self.billed_by)


class SubscriptionEventKind(models.TextChoices):
    CREATED = "created", _("Created")
    STATUS_CHANGED = "status_changed", _("Status changed")
    PLAN_CHANGED = "plan_changed", _("Plan changed")
    PLAN_CHANGE_SCHEDULED = "plan_change_scheduled", _("Plan change scheduled")
    CANCEL_SCHEDULED = "cancel_scheduled", _("Cancel at period end scheduled")
    CANCEL_UNSCHEDULED = "cancel_unscheduled", _("Cancel at period end withdrawn")
    RENEWED = "renewed", _("Renewed")


class SubscriptionEvent(AuditRow):
    """Append-only audit of every status or plan change of a subscription."""

    # No index of its own: sub_event_trail (subscription, created_at, id) serves every lookup by subscription.
    subscription = models.ForeignKey(Subscription, verbose_name=_("subscription"),
        on_delete=models.PROTECT, related_name="events", db_index=False)
    kind = models.CharField(_("kind"), max_length=32, choices=SubscriptionEventKind.choices)
    from_status = models.CharField(_("from status"), max_length=16, blank=True)
    to_status = models.CharField(_("to status"), max_length=16, blank=True)
    # Set on plan changes only: indexed where set (sub_event_from_plan, sub_event_to_plan), since the
    # billing run writes two events per subscription and almost none names a plan.
    from_plan = models.ForeignKey(Plan, verbose_name=_("from plan"),
        null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                  db_index=False)
    to_plan = models.ForeignKey(Plan, verbose_name=_("to plan"),
        null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                db_index=False)
    data = models.JSONField(_("data"), default=dict, blank=True)

    class Meta:
        verbose_name = _("subscription event")
        verbose_name_plural = _("subscription events")
        ordering = ["-created_at", "-id"]
        indexes = [
            # A subscription's trail in order: the newest status before a new audit row (count rollups) is
            # one step of a backward scan, the admin's trail one range.
            models.Index(fields=["subscription", "created_at", "id"], name="sub_event_trail"),
            models.Index(fields=["from_plan"], name="sub_event_from_plan", condition=Q(from_plan__isnull=False)),
            models.Index(fields=["to_plan"], name="sub_event_to_plan", condition=Q(to_plan__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.from_status}->{self.to_status}"


class ApiIdempotencyKey(models.Model):
    """The first response to an API POST made with an `Idempotency-Key` header, replayed on retries.

    API infrastructure, kept in the lowest app because every app's endpoints use it and it points at
    `Customer`. The row is claimed in a transaction of its own before the view runs (in progress: no
    response, `locked_until` set), the view runs outside any transaction of ours (its services commit
    their own writes, and provider calls happen with no lock held), and the response is recorded in a
    second short transaction. A concurrent request with the same key meanwhile answers 409.
    """

    # The owner is the customer when the user is linked to one (keys are per customer), otherwise the
    # user itself (staff); exactly one of the two is set.
    customer = models.ForeignKey(Customer, verbose_name=_("customer"),
        null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("user"),
        null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+")
    key = models.CharField(_("key"), max_length=255)
    # The same key sent to another endpoint or with another body is a client bug: answered 409.
    request_method = models.CharField(_("request method"), max_length=10)
    request_path = models.CharField(_("request path"), max_length=500)
    request_hash = models.CharField(_("request hash"), max_length=64, help_text=_("SHA-256 of the raw request body."))
    # Null while the first request is in progress.
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    # JSON as the API rendered it (primitives only), so a replay answers the same body.
    response_body = models.JSONField(_("response body"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    # While in progress: until when the claim holds. A request that crashed without answering leaves its
    # claim behind; after this instant a retry takes the key over and runs (API_IDEMPOTENCY_LEASE_SECONDS).
    # It also identifies the claim, so a request whose lease was taken over records or releases nothing.
    locked_until = models.DateTimeField(_("locked until"), null=True, blank=True)

    class Meta:
        verbose_name = _("api idempotency key")
        verbose_name_plural = _("api idempotency keys")
        constraints = [
            models.UniqueConstraint(fields=["customer", "key"], condition=Q(customer__isnull=False),
                                    name="api_idempotency_key_per_customer"),
            models.UniqueConstraint(fields=["user", "key"], condition=Q(customer__isnull=True),
                                    name="api_idempotency_key_per_user"),
            models.CheckConstraint(condition=Q(customer__isnull=False) | Q(user__isnull=False),
                                   name="api_idempotency_key_has_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.request_method} {self.request_path} [{self.key}] -> {self.response_status}"


# The MRR and subscriptions-at-a-date rollups are models of this app, kept in their own modules.
from subscriptions.count_models import SubscriptionCountChange, SubscriptionCountMonth  # noqa: E402, F401, I001
from subscriptions.mrr_models import (  # noqa: E402, F401
    CustomerFirstFee,
    CustomerMrrChange,
    CustomerMrrMonth,
    MrrMonth,
    SubscriptionFeeMonth,
    SubscriptionFeeSpan,
)
