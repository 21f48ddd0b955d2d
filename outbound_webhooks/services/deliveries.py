"""Delivering events: claim (short transaction), POST (no transaction open), record the outcome (short
transaction); failures are re-delivered later by a scheduled job until the retry window closes, and an
endpoint failing for OUTBOUND_WEBHOOKS_DISABLE_AFTER is disabled and staff are emailed."""

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exceptions import InvalidOperation
from core.jobs import job_defer, jobs_defer_many
from modules.selectors import modules_enabled_read
from notifications.services import EmailSpec, email_send_once
from outbound_webhooks.models import (
    MODULE_CODE,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from outbound_webhooks.network import PostOutcome, webhook_post, webhook_signature
from outbound_webhooks.services.events import WEBHOOK_DELIVER_TASK

WEBHOOK_ENDPOINT_DISABLED_EMAIL_TASK = "outbound_webhooks.endpoint_disabled_email"
# Who is told an endpoint was disabled: staff who may re-enable it.
ENDPOINT_ADMIN_PERMISSION = "outbound_webhooks.change_webhookendpoint"


@dataclass(frozen=True)
class _Claim:
    delivery_id: int
    endpoint_id: int
    url: str
    body: bytes
    headers: dict[str, str]


def webhook_event_body(*, event: WebhookEvent) -> bytes:
    """The JSON receivers get (docs/webhooks-outbound.md): the same bytes on every attempt."""
    return json.dumps({
        "id": str(event.event_id), "type": event.event_type, "created_at": event.created_at.isoformat(),
        "object": {"type": event.object_type, "id": event.object_id, "sequence": event.sequence},
        "data": event.data,
    }, separators=(",", ":"), sort_keys=True).encode()


def webhook_delivery_attempt(*, delivery_id: int, manual: bool = False) -> WebhookDelivery:
    """One attempt of a delivery (the delivery job); never called inside a transaction."""
    claim = _delivery_claim(delivery_id=delivery_id)
    if claim is not None:
        outcome = webhook_post(url=claim.url, body=claim.body, headers=claim.headers)
        _delivery_record(claim=claim, outcome=outcome, manual=manual)
    return WebhookDelivery.objects.get(pk=delivery_id)


def _delivery_claim(*, delivery_id: int) -> _Claim | None:
    with transaction.atomic():
        delivery = (WebhookDelivery.objects.select_for_update(of=("self",))
                    .select_related("event", "endpoint").get(pk=delivery_id))
        if delivery.status != DeliveryStatus.PENDING:
            return None  # delivered meanwhile, or given up; a redelivery makes it pending again
        # Read now, not from the per-process memo, and after the delivery's lock: a switch-on that resumed
        # this delivery has committed by then, so a stale memo cannot pause it again with no job left.
        if MODULE_CODE not in modules_enabled_read():
            _delivery_pause(delivery=delivery)
            return None
        endpoint = delivery.endpoint
        if not endpoint.enabled:
            _delivery_give_up(delivery=delivery, reason="endpoint disabled")
            return None
        body = webhook_event_body(event=delivery.event)
        timestamp = int(time.time())
        signature = webhook_signature(secret=endpoint.secret, timestamp=timestamp, body=body)
        headers = {
            "Content-Type": "application/json", "User-Agent": "billing-webhooks/1",
            "Billing-Event-Id": str(delivery.event.event_id), "Billing-Event-Type": delivery.event.event_type,
            "Billing-Signature": f"t={timestamp},v1={signature}",
        }
        return _Claim(delivery_id=delivery.pk, endpoint_id=endpoint.pk, url=endpoint.url, body=body, headers=headers)


def _delivery_pause(*, delivery: WebhookDelivery) -> None:
    """The module is off: the delivery stays pending, without a job, until `webhook_deliveries_resume`."""
    delivery.paused_at, delivery.next_attempt_at = timezone.now(), None
    delivery.save(update_fields=["paused_at", "next_attempt_at", "updated_at"])


def webhook_deliveries_resume() -> int:
    """The module was switched on (its on_enable hook, inside that transaction): every delivery paused
    while it was off is due now, with a fresh retry window (time off does not count against it), and gets
    its job when the switch commits. The number resumed."""
    now = timezone.now()
    ids = list(WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, paused_at__isnull=False)
               .order_by("pk").values_list("pk", flat=True))
    if ids:
        WebhookDelivery.objects.filter(pk__in=ids).update(
            paused_at=None, next_attempt_at=now, retry_until=now + settings.OUTBOUND_WEBHOOKS_RETRY_WINDOW,
            updated_at=now)
        jobs_defer_many(name=WEBHOOK_DELIVER_TASK, kwargs_list=[{"delivery_id": pk} for pk in ids])
    return len(ids)


def _delivery_give_up(*, delivery: WebhookDelivery, reason: str) -> None:
    delivery.status, delivery.next_attempt_at, delivery.last_error = DeliveryStatus.FAILED, None, reason
    delivery.save(update_fields=["status", "next_attempt_at", "last_error", "updated_at"])


def _delivery_record(*, claim: _Claim, outcome: PostOutcome, manual: bool) -> None:
    now = timezone.now()
    with transaction.atomic():
        # Endpoint before delivery, always: the order every writer of both takes.
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=claim.endpoint_id)
        delivery = WebhookDelivery.objects.select_for_update().get(pk=claim.delivery_id)
        WebhookAttempt.objects.create(
            delivery=delivery, response_code=outcome.response_code, response_excerpt=outcome.response_excerpt,
            error=outcome.error, succeeded=outcome.succeeded, manual=manual, duration_ms=outcome.duration_ms)
        delivery.attempts += 1
        delivery.last_response_code = outcome.response_code
        delivery.last_error = outcome.error or ("" if outcome.succeeded else f"HTTP {outcome.response_code}")
        if outcome.succeeded:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = DeliveryStatus.SUCCEEDED, now, None
            endpoint.failing_since = None
            endpoint.save(update_fields=["failing_since", "updated_at"])
        else:
            _retry_schedule(delivery=delivery, now=now)
            _endpoint_failure_note(endpoint=endpoint, now=now)
        delivery.save()


def webhook_retry_delay(*, attempts: int) -> timedelta:
    """Wait after the `attempts`-th failure: base x 2^(attempts-1), at most OUTBOUND_WEBHOOKS_RETRY_MAX_DELAY."""
    base = settings.OUTBOUND_WEBHOOKS_RETRY_BASE_DELAY
    return min(base * (2 ** min(attempts - 1, 30)), settings.OUTBOUND_WEBHOOKS_RETRY_MAX_DELAY)


def _retry_schedule(*, delivery: WebhookDelivery, now: datetime) -> None:
    if now >= delivery.retry_until:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
        return
    # The last attempt falls on the end of the window, so a receiver down for the whole window gets one
    # at its very end.
    delivery.next_attempt_at = min(now + webhook_retry_delay(attempts=delivery.attempts), delivery.retry_until)
    job_defer(name=WEBHOOK_DELIVER_TASK, schedule_at=delivery.next_attempt_at, delivery_id=delivery.pk)


def _endpoint_failure_note(*, endpoint: WebhookEndpoint, now: datetime) -> None:
    if endpoint.failing_since is None:
        endpoint.failing_since = now
    elif endpoint.enabled and now - endpoint.failing_since >= settings.OUTBOUND_WEBHOOKS_DISABLE_AFTER:
        endpoint.enabled, endpoint.disabled_at = False, now
        endpoint.disabled_reason = (_("Every delivery failed since %(since)s UTC.")
                                    % {"since": f"{endpoint.failing_since:%Y-%m-%d %H:%M}"})
        job_defer(name=WEBHOOK_ENDPOINT_DISABLED_EMAIL_TASK, endpoint_id=endpoint.pk)
    endpoint.save(update_fields=["failing_since", "enabled", "disabled_at", "disabled_reason", "updated_at"])


def webhook_delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Staff asked to send it again: pending with a fresh retry window, a job after this commits."""
    with transaction.atomic():
        delivery = (WebhookDelivery.objects.select_for_update(of=("self",)).select_related("endpoint")
                    .get(pk=delivery.pk))
        if not delivery.endpoint.enabled:
            raise InvalidOperation(_("The endpoint is disabled; enable it before redelivering."),
                                   code="webhook_endpoint_disabled")
        now = timezone.now()
        delivery.status, delivery.next_attempt_at = DeliveryStatus.PENDING, now
        delivery.retry_until = now + settings.OUTBOUND_WEBHOOKS_RETRY_WINDOW
        delivery.save(update_fields=["status", "next_attempt_at", "retry_until", "updated_at"])
        job_defer(name=WEBHOOK_DELIVER_TASK, delivery_id=delivery.pk, manual=True)
    return delivery


def webhook_endpoint_disabled_email(*, endpoint_id: int) -> int:
    """Tell every active staff member who may re-enable the endpoint (the email job); how many were told."""
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    if endpoint.disabled_at is None:
        return 0  # re-enabled before the job ran
    app_label, codename = ENDPOINT_ADMIN_PERMISSION.split(".")
    staff = (get_user_model().objects.filter(is_active=True, is_staff=True).exclude(email="")
             .filter(Q(is_superuser=True) | Q(user_permissions__codename=codename,
                                              user_permissions__content_type__app_label=app_label)
                     | Q(groups__permissions__codename=codename,
                         groups__permissions__content_type__app_label=app_label))
             .distinct().order_by("pk"))
    event_key = f"webhook_endpoint_disabled:{endpoint.pk}:{endpoint.disabled_at:%Y%m%dT%H%M%S}"
    recipients = [user.email for user in staff]
    for email in recipients:
        email_send_once(spec=EmailSpec(event_key=event_key, recipient=email, kind="webhook_endpoint_disabled",
                                       context={"endpoint": endpoint}))
    return len(recipients)
