"""The Stripe section of /healthz."""

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from payments.providers.base import ProviderHealth
from payments.providers.stripe import gateway
from payments.providers.stripe.webhooks.selectors import stripe_event_failed_recent_count, webhook_rejection_count


def stripe_health(*, deep: bool = False) -> ProviderHealth:
    """Whether Stripe can be used and whether its webhooks are arriving healthy.

    Degraded (reported, but the HTTP status stays 200 so load balancers keep the instance: card payments
    are not what keeps the app alive) when the API key is set but the signing secret is missing, when
    deliveries failed verification in the last hour (a wrong or rotated secret fails silently otherwise),
    or when stored events failed processing in the last hour. `deep` (`/healthz?deep=1`) also asks
    Stripe for the account's balance, the cheapest authenticated call (`gateway.api_probe`), so a revoked
    key shows: degraded when Stripe is slow or answers 5xx, down when it refuses the key; its outcome and
    latency are in `details["api"]`, as PayPal's.
    """
    configured = bool(settings.STRIPE_SECRET_KEY)
    secret_missing = not settings.STRIPE_WEBHOOK_SECRET
    rejected = webhook_rejection_count()
    failed = stripe_event_failed_recent_count()
    problems = []
    if configured and secret_missing:
        problems.append(_("STRIPE_WEBHOOK_SECRET is missing: every webhook is refused"))
    if rejected:
        problems.append(ngettext("%(count)d webhook delivery failed verification in the last hour",
                                 "%(count)d webhook deliveries failed verification in the last hour",
                                 rejected) % {"count": rejected})
    if failed:
        problems.append(ngettext("%(count)d webhook event failed processing in the last hour",
                                 "%(count)d webhook events failed processing in the last hour",
                                 failed) % {"count": failed})
    return ProviderHealth.of(problems=problems, probe=gateway.api_probe() if deep and configured else None,
                             details={"configured": configured, "webhook_secret_missing": secret_missing,
                                      "verification_failures_last_hour": rejected, "events_failed_last_hour": failed})
