"""Rows every payment rail shares: who a customer is at each rail, what a plan is called there, and the
inbox of what the rails told us. Each row names its rail by `provider`, the code of a PAYMENT_PROVIDERS
entry ("stripe", "manual", ...); the provider's own ids are unique per provider, never across rails.

Rail codes are not TextChoices: rails are installed by settings, so the set of codes is not fixed here.
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from subscriptions.models import Customer, Plan, Subscription


class ProviderAccount(models.Model):
    """A customer as one rail knows them: its customer id there and the payment method saved with it.

    A customer has at most one account per rail. When several accounts hold a saved payment method, the
    billing run charges the one saved last (`default_payment_method_set_at`): that is the customer's most
    recent choice, and no second column has to be kept in step when another rail saves a method."""

    # Part of the customer, as the columns it replaces on Customer were: deleted with it.
    customer = models.ForeignKey(Customer, verbose_name=_("customer"),
        on_delete=models.CASCADE, related_name="provider_accounts")
    provider = models.CharField(_("provider"), max_length=32)
    # The rail's id for the customer; null for rails that keep no customer object (they still hold a
    # saved method). Unique per provider, so a webhook naming it maps to exactly one customer.
    provider_customer_id = models.CharField(_("provider customer id"), max_length=255, null=True, blank=True)
    # The method renewals are charged to off-session ("" when none is saved).
    default_payment_method_id = models.CharField(_("default payment method id"), max_length=255, blank=True)
    # The rail's own time of the message that set that method: a late message older than this never
    # replaces a newer method with an older one. A column written only by the rail's services (never the
    # API or the admin): in `Customer.metadata`, which customers write, a far-future value would switch
    # method updates off.
    default_payment_method_set_at = models.DateTimeField(_("default payment method set at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("provider account")
        verbose_name_plural = _("provider accounts")
        ordering = ["customer_id", "provider"]
        constraints = [
            models.CheckConstraint(condition=~Q(provider=""), name="provider_account_provider_set"),
            models.UniqueConstraint(fields=["customer", "provider"], name="provider_account_one_per_rail"),
            models.UniqueConstraint(fields=["provider", "provider_customer_id"],
                                    condition=Q(provider_customer_id__isnull=False),
                                    name="provider_account_customer_id_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.provider_customer_id or '-'} (customer #{self.customer_id})"

    @property
    def has_default_payment_method(self) -> bool:
        return bool(self.default_payment_method_id)


class ProviderPlanPrice(models.Model):
    """What a plan is called at one rail: its price id (a Stripe price, a PayPal plan, a Lemon Squeezy
    variant) and, where the rail has one, the product it belongs to. Our Plan stays the source of truth
    for the amount; this only maps it."""

    plan = models.ForeignKey(Plan, verbose_name=_("plan"), on_delete=models.CASCADE, related_name="provider_prices")
    provider = models.CharField(_("provider"), max_length=32)
    provider_price_id = models.CharField(_("provider price id"), max_length=255)
    provider_product_id = models.CharField(_("provider product id"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("provider plan price")
        verbose_name_plural = _("provider plan prices")
        ordering = ["plan_id", "provider"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "provider"], name="provider_plan_price_one_per_rail"),
            # A rail's price maps back to exactly one plan (its webhooks name the price, not our plan).
            models.UniqueConstraint(fields=["provider", "provider_price_id"], name="provider_plan_price_id_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.provider_price_id}"


class ProviderSubscription(models.Model):
    """A subscription a merchant-of-record rail bills (Lemon Squeezy), mirrored by one of ours: the rail's ids
    for it, and the rail's own time of the newest state we applied, so that a late or repeated message never
    moves it backwards. Written only by the rail's webhook services."""

    subscription = models.OneToOneField(Subscription, on_delete=models.CASCADE, related_name="provider_mirror")
    provider = models.CharField(max_length=32)
    provider_subscription_id = models.CharField(max_length=255)
    # The rail's id of the customer and of the first order (its initial payment names the order, not the
    # subscription: this is how an order event finds the subscription it paid for).
    provider_customer_id = models.CharField(max_length=255, blank=True)
    provider_order_id = models.CharField(max_length=255, blank=True)
    # The rail's own word for the state (e.g. "cancelled" is still active until the period ends with us).
    provider_status = models.CharField(max_length=32, blank=True)
    provider_price_id = models.CharField(max_length=255, blank=True)
    # The rail's id of the subscription's usage-priced item, which usage records are reported against; ""
    # when its price is not usage-based (nothing is reported).
    provider_usage_item_id = models.CharField(max_length=255, blank=True)
    # The rail's updated_at of the newest state applied: a message older than this is stale.
    state_at = models.DateTimeField()
    # Where the rail counts periods from (its creation, or its trial end): the period a payment pays for
    # is counted from here, so a payment mirrored late or twice lands on the same period.
    anchor = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(provider=""), name="provider_subscription_provider_set"),
            # A rail's subscription is mirrored by exactly one of ours, however many messages create it.
            models.UniqueConstraint(fields=["provider", "provider_subscription_id"],
                                    name="provider_subscription_id_unique"),
        ]
        indexes = [models.Index(fields=["provider", "provider_order_id"], name="provider_subscription_order",
                                condition=~Q(provider_order_id=""))]

    def __str__(self) -> str:
        return f"{self.provider} {self.provider_subscription_id} (subscription #{self.subscription_id})"


class ProviderEventStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    PROCESSED = "processed", _("Processed")
    FAILED = "failed", _("Failed")
    IGNORED = "ignored", _("Ignored")


class ProviderEvent(models.Model):
    """Webhook inbox of every rail: each verified delivery is stored before it is processed, once per
    event id of its provider."""

    provider = models.CharField(_("provider"), max_length=32)
    event_id = models.CharField(_("event id"), max_length=255)
    type = models.CharField(_("type"), max_length=100, db_index=True)
    api_version = models.CharField(_("api version"), max_length=32, blank=True)
    livemode = models.BooleanField(_("livemode"), default=False)
    payload = models.JSONField(_("payload"))
    # The provider's own time of the event: orders events for one object when deliveries arrive out of order.
    provider_created_at = models.DateTimeField(_("provider created at"), null=True, blank=True)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)
    status = models.CharField(_("status"),
        max_length=16, choices=ProviderEventStatus.choices, default=ProviderEventStatus.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("provider event")
        verbose_name_plural = _("provider events")
        ordering = ["-received_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ProviderEventStatus.values),
                                   name="provider_event_status_valid"),
            # A redelivered event fails on this index and is answered without being processed again.
            models.UniqueConstraint(fields=["provider", "event_id"], name="provider_event_id_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.type} {self.event_id}"
