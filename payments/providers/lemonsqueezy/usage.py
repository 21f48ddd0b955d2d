"""Usage of mirrored subscriptions on usage-priced variants, reported to Lemon Squeezy as usage records.

Lemon Squeezy bills the usage itself at the period end from the records it holds. Each report *sets* the
period's quantity ("action": "set") on the subscription's usage-priced item, so the run may report the
same period any number of times (a retry, a second run, two workers) and Lemon Squeezy still bills it once.
"""

from payments.models import ProviderSubscription
from payments.providers.base import UsageReport
from payments.providers.lemonsqueezy import client
from payments.providers.lemonsqueezy.models import LEMONSQUEEZY


def usage_reports_send(*, reports: list[UsageReport]) -> int:
    """Send each report whose subscription has a usage-priced item; returns how many were recorded. Called
    with no transaction open (one call per item: Lemon Squeezy takes one record per request)."""
    items = dict(ProviderSubscription.objects.filter(provider=LEMONSQUEEZY,
                                                     subscription_id__in=[r.subscription_id for r in reports])
                 .exclude(provider_usage_item_id="").values_list("subscription_id", "provider_usage_item_id"))
    sent = 0
    for report in reports:
        item = items.get(report.subscription_id)
        if item:
            client.usage_record_set(subscription_item_id=item, quantity=report.quantity)
            sent += 1
    return sent
