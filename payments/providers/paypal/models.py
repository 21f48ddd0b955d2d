"""What only the PayPal rail keeps, until the neutral provider columns land (issue 10, item 2: a
per-customer provider account and one webhook inbox with a `provider` column will replace both tables;
docs/paypal.md, "Where PayPal's ids live"):

- `PayPalEvent`: PayPal's webhook inbox, one row per PayPal event id;
- `PayPalAccount`: our id for the customer at PayPal and the vaulted wallet renewals are charged to.
Orders keep using `Payment.paypal_order_id`; our refunds are found through the `custom_id` PayPal echoes.
"""

from django.db import models
from django.db.models import Q

from subscriptions.models import Customer

# The code of this rail in PAYMENT_PROVIDERS.
PAYPAL = "paypal"


class PayPalEventStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed"
    IGNORED = "ignored", "Ignored"


class PayPalEvent(models.Model):
    """Webhook inbox: every verified delivery is stored before it is processed, once per event id."""

    # Unique: a redelivered event fails on this index and is answered without being processed again.
    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    # PayPal's resource_version, kept for reading old payloads.
    api_version = models.CharField(max_length=32, blank=True)
    payload = models.JSONField()
    # PayPal's own create_time of the event: replays run in PayPal's order.
    provider_created_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    status = models.CharField(max_length=16, choices=PayPalEventStatus.choices, default=PayPalEventStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        verbose_name = "PayPal event"
        ordering = ["-received_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=PayPalEventStatus.values), name="paypal_event_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class PayPalAccount(models.Model):
    """A customer as PayPal knows them: our id for them there and their saved wallet."""

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="paypal_account")
    # Ours to choose (PayPal's vault takes a merchant customer id), unique so vault messages map back.
    paypal_customer_id = models.CharField(max_length=64, unique=True)
    # The vaulted wallet (payment token) renewals are charged to ("" when none is saved).
    vault_id = models.CharField(max_length=255, blank=True)
    # PayPal's time of the message that set it: an older message never replaces a newer wallet.
    vault_set_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "PayPal account"

    def __str__(self) -> str:
        return f"{self.paypal_customer_id} (customer #{self.customer_id})"
