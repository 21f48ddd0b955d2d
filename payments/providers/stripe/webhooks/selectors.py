"""Reads about the webhook inbox, for /healthz and the admin."""

from datetime import datetime, timedelta

from django.core.cache import cache
from django.utils import timezone

from payments.models import ProviderEventStatus
from payments.providers.stripe.models import StripeEvent

# Rejected deliveries are never stored, so the database cannot count them: they are counted per minute in
# the cache (shared by every worker when REDIS_URL is set), and the last hour of buckets is summed.
REJECTED_KEY = "stripe-webhook-rejected:{minute}"
REJECTION_WINDOW_MINUTES = 60


def minute_bucket(at: datetime) -> int:
    return int(at.timestamp()) // 60


def webhook_rejection_count(*, now: datetime | None = None) -> int:
    current = minute_bucket(now or timezone.now())
    keys = [REJECTED_KEY.format(minute=m) for m in range(current - REJECTION_WINDOW_MINUTES + 1, current + 1)]
    return sum(int(v) for v in cache.get_many(keys).values())


def stripe_event_failed_recent_count(*, now: datetime | None = None, hours: int = 1) -> int:
    """Events whose handler failed among those received in the last `hours` (uses the received_at index)."""
    since = (now or timezone.now()) - timedelta(hours=hours)
    return StripeEvent.objects.filter(received_at__gte=since, status=ProviderEventStatus.FAILED).count()
