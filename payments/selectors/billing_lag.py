"""How far behind the billing run is (the invoicing module's health)."""

from datetime import datetime

from django.db.models import Min

from subscriptions.models import Subscription, SubscriptionStatus

# The statuses `billing run` renews or converts when their period ends (payments.billing.renewals).
_BILLED_STATUSES = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)


def billing_oldest_due(*, as_of: datetime) -> datetime | None:
    """The end of the oldest period that is over but not yet renewed, or None when nothing waits."""
    # Mirrored subscriptions are not the run's to renew, so never make it look late.
    return (Subscription.objects.filter(status__in=_BILLED_STATUSES, current_period_end__lte=as_of, billed_by="")
            .aggregate(oldest=Min("current_period_end"))["oldest"])
