"""The customer emails about subscriptions (canceled, trial ending): context and recipient.

Run in jobs after the change committed; `notifications.services.email_send_once` sends each at most
once per event and recipient."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from core.jobs import jobs_defer_many
from notifications.models import EmailLog
from notifications.services import EmailSpec, email_send_once
from subscriptions.models import Subscription, SubscriptionStatus

SUBSCRIPTION_CANCELED_TASK = "subscriptions.subscription_canceled_email"
TRIAL_ENDING_TASK = "subscriptions.trial_ending_email"


def _subscription(subscription_id: int) -> Subscription:
    return Subscription.objects.select_related("customer", "plan").get(pk=subscription_id)


def subscription_canceled_email_send(*, subscription_id: int) -> EmailLog:
    subscription = _subscription(subscription_id)
    return email_send_once(spec=EmailSpec(
        language=subscription.customer.preferred_language,
        event_key=f"subscription_canceled:{subscription.pk}", recipient=subscription.customer.email,
        kind="subscription_canceled", context={"subscription": subscription, "customer": subscription.customer}))


def trial_ending_email_send(*, subscription_id: int, now: datetime | None = None) -> EmailLog | None:
    """The reminder for the trial as it ends now; nothing if it is no longer trialing."""
    subscription = _subscription(subscription_id)
    if subscription.status != SubscriptionStatus.TRIALING or subscription.trial_end is None:
        return None
    days_left = max(0, round((subscription.trial_end - (now or timezone.now())) / timedelta(days=1)))
    # Keyed by the trial's end: a trial extended to a new end gets a reminder for it too.
    return email_send_once(spec=EmailSpec(
        language=subscription.customer.preferred_language,
        event_key=f"trial_ending:{subscription.pk}:{subscription.trial_end.isoformat()}",
        recipient=subscription.customer.email, kind="trial_ending",
        context={"subscription": subscription, "customer": subscription.customer, "days_left": days_left}))


def trial_reminders_schedule(*, now: datetime | None = None) -> int:
    """One reminder job per trial ending within TRIAL_REMINDER_DAYS (a repeated check defers the job
    again; the email log sends it once)."""
    now = now or timezone.now()
    ids = list(Subscription.objects.filter(
        status=SubscriptionStatus.TRIALING, trial_end__gt=now,
        trial_end__lte=now + timedelta(days=settings.TRIAL_REMINDER_DAYS)).order_by("pk").values_list("pk", flat=True))
    jobs_defer_many(name=TRIAL_ENDING_TASK, kwargs_list=[{"subscription_id": pk} for pk in ids])
    return len(ids)
