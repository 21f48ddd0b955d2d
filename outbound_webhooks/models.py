"""Outbound webhooks: endpoints staff register, events written with the change, deliveries and their log."""

import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.memo import VersionedMemo

# The module's code (outbound_webhooks/modules.py): emits and deliveries check whether it is on.
MODULE_CODE = "outbound_webhooks"

class EventType(models.TextChoices):
    """Every event an endpoint may subscribe to (docs/webhooks-outbound.md lists their payloads)."""

    INVOICE_FINALIZED = "invoice.finalized", _("Invoice finalized")
    INVOICE_PAID = "invoice.paid", _("Invoice paid")
    INVOICE_VOIDED = "invoice.voided", _("Invoice voided")
    PAYMENT_SUCCEEDED = "payment.succeeded", _("Payment succeeded")
    PAYMENT_FAILED = "payment.failed", _("Payment failed")
    PAYMENT_REFUNDED = "payment.refunded", _("Payment refunded")
    SUBSCRIPTION_CREATED = "subscription.created", _("Subscription created")
    SUBSCRIPTION_UPDATED = "subscription.updated", _("Subscription updated")
    SUBSCRIPTION_CANCELED = "subscription.canceled", _("Subscription canceled")
    CREDITS_GRANTED = "credits.granted", _("Credits granted")
    CREDITS_LOW = "credits.low", _("Credits low")
    USAGE_THRESHOLD_REACHED = "usage.threshold_reached", _("Usage threshold reached")


class WebhookEndpointQuerySet(models.QuerySet):
    """Bulk writes (the admin's "delete selected", `.update()`) tell the emitters' memo too: an emit that
    still believed in a deleted endpoint would fail its caller's transaction on the delivery's foreign key."""

    def update(self, **kwargs):
        result = super().update(**kwargs)
        ENDPOINT_SUBSCRIPTIONS_MEMO.changed()
        return result

    def delete(self):
        result = super().delete()
        ENDPOINT_SUBSCRIPTIONS_MEMO.changed()
        return result


class WebhookEndpoint(models.Model):
    """A URL of the merchant's systems that receives the events it subscribed to, signed with its secret."""

    url = models.URLField(_("URL"), max_length=500)
    # Shared with the receiver, which recomputes the HMAC-SHA256 signature with it; generated when staff
    # give none. Stored in clear because signing needs it.
    secret = models.CharField(_("secret"), max_length=100)
    # The event types delivered here; staff choose them from EventType (checked by the services and a
    # constraint-free list because the set of types grows with the code, not with migrations).
    event_types = models.JSONField(_("event types"), default=list)
    description = models.CharField(_("description"), max_length=200, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    # Start of the current run of failed attempts (cleared by any success): an endpoint failing for
    # OUTBOUND_WEBHOOKS_DISABLE_AFTER_HOURS is disabled and staff are emailed.
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True)
    # Why and when the system (not staff) disabled it, shown in the admin and the API until re-enabled.
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True)
    disabled_reason = models.CharField(_("disabled reason"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url

    # Every writer (services, the admin, the delivery job disabling a failing endpoint) saves or deletes
    # through these, so none can forget to tell the emitters' memo. A save naming only other fields (each
    # delivery's outcome updates `failing_since`) changes no subscription and bumps nothing.
    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        update_fields = kwargs.get("update_fields")
        if update_fields is None or {"enabled", "event_types"} & set(update_fields):
            ENDPOINT_SUBSCRIPTIONS_MEMO.changed()

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        ENDPOINT_SUBSCRIPTIONS_MEMO.changed()
        return result


def _endpoints_by_event_type_read() -> dict[str, tuple[int, ...]]:
    subscribers: dict[str, list[int]] = {}
    for pk, event_types in WebhookEndpoint.objects.filter(enabled=True).order_by("pk").values_list("pk", "event_types"):
        for event_type in event_types:
            subscribers.setdefault(event_type, []).append(pk)
    return {event_type: tuple(ids) for event_type, ids in subscribers.items()}


# Which enabled endpoints want which event types, read by every emit (outbound_webhooks.selectors): kept
# per process and reloaded only after an endpoint changes (core.memo), so a system without endpoints pays
# no query.
ENDPOINT_SUBSCRIPTIONS_MEMO: VersionedMemo[dict[str, tuple[int, ...]]] = VersionedMemo(
    "outbound_webhooks.endpoint_subscriptions", load=_endpoints_by_event_type_read)


class WebhookEvent(models.Model):
    """Something that happened, written by the transaction that made it happen (so never for rolled-back
    work, never lost for committed work); immutable once written."""

    # The id receivers dedupe on: unique across every event, stable across retries and redeliveries.
    event_id = models.UUIDField(_("event id"), default=uuid.uuid4, unique=True, editable=False)
    event_type = models.CharField(_("event type"), max_length=64, choices=EventType.choices)
    # The object the event is about ("invoice", 42): receivers order its events by `sequence`.
    object_type = models.CharField(_("object type"), max_length=32)
    object_id = models.BigIntegerField(_("object id"))
    # 1, 2, 3 ... per (object_type, object_id), from WebhookObjectSequence in the emitting transaction.
    sequence = models.PositiveIntegerField(_("sequence"))
    # The object as it was when the event happened, built by the emitting app; written by the system only.
    # Django's encoder, so emitters may hand over datetimes and Decimals as they are.
    data = models.JSONField(_("data"), default=dict, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["object_type", "object_id", "sequence"],
                                    name="webhook_event_sequence_unique"),
            models.CheckConstraint(condition=models.Q(event_type__in=EventType.values),
                                   name="webhook_event_type_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.object_type} {self.object_id} #{self.sequence}"


class WebhookObjectSequence(models.Model):
    """The last sequence number given to an object's events; bumped by an upsert in the emitting
    transaction, so two transactions emitting for one object get 1 and 2, never the same number."""

    object_type = models.CharField(_("object type"), max_length=32)
    object_id = models.BigIntegerField(_("object id"))
    last_sequence = models.PositiveIntegerField(_("last sequence"))

    class Meta:
        verbose_name = _("webhook object sequence")
        verbose_name_plural = _("webhook object sequences")
        constraints = [models.UniqueConstraint(fields=["object_type", "object_id"],
                                               name="webhook_sequence_object_unique")]

    def __str__(self) -> str:
        return f"{self.object_type} {self.object_id}: {self.last_sequence}"


class DeliveryStatus(models.TextChoices):
    # Written with the event; a job delivers it (again after each failure until the retry window ends).
    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Succeeded")
    # Retries are over (OUTBOUND_WEBHOOKS_RETRY_HOURS passed, or the endpoint was disabled); staff may redeliver.
    FAILED = "failed", _("Failed")


class WebhookDelivery(models.Model):
    """One event for one endpoint: its status and the outcome of the last attempt (WebhookAttempt has all)."""

    event = models.ForeignKey(WebhookEvent, verbose_name=_("event"),
        on_delete=models.PROTECT, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, verbose_name=_("endpoint"),
        on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(_("status"),
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # The last attempt's HTTP status (null: no answer, e.g. refused address or timeout) and what it said.
    last_response_code = models.PositiveSmallIntegerField(_("last response code"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    # When the next automatic attempt is due (null when none is scheduled), for staff reading the log.
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    # Retries stop this long after the delivery was first due; a manual redelivery restarts the window.
    retry_until = models.DateTimeField(_("retry until"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    # Set when its job found the outbound_webhooks module switched off: the delivery stays pending with no
    # job until the module is switched on again, which schedules every paused delivery at once.
    paused_at = models.DateTimeField(_("paused at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("webhook delivery")
        ordering = ["-id"]
        verbose_name_plural = _("webhook deliveries")
        permissions = [("redeliver_webhookdelivery", "Can redeliver a webhook")]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once_per_endpoint"),
            models.CheckConstraint(condition=models.Q(status__in=DeliveryStatus.values),
                                   name="webhook_delivery_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.endpoint_id}"


class WebhookAttempt(models.Model):
    """The delivery log: one row per HTTP attempt, append-only."""

    delivery = models.ForeignKey(WebhookDelivery, verbose_name=_("delivery"),
        on_delete=models.PROTECT, related_name="attempt_log")
    # Null when no HTTP answer came (refused address, DNS failure, timeout, connection error).
    response_code = models.PositiveSmallIntegerField(_("response code"), null=True, blank=True)
    # The first characters of the receiver's answer body, enough to see why it refused.
    response_excerpt = models.CharField(_("response excerpt"), max_length=500, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    succeeded = models.BooleanField(_("succeeded"))
    # Whether staff asked for this attempt (redeliver) rather than the retry schedule.
    manual = models.BooleanField(_("manual"), default=False)
    duration_ms = models.PositiveIntegerField(_("duration ms"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{'succeeded' if self.succeeded else 'failed'} {self.response_code or self.error[:40]}"
