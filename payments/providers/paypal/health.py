"""The PayPal section of /healthz."""

from django.conf import settings

from payments.providers.base import ProviderHealth
from payments.providers.paypal import client


def paypal_health() -> ProviderHealth:
    """Whether PayPal can be used. Degraded (reported; HTTP stays 200, PayPal is not what keeps the app
    alive) when the keys are set but the webhook id is missing: every PayPal webhook would be refused."""
    configured = client.is_configured()
    webhook_id_missing = not settings.PAYPAL_WEBHOOK_ID
    problems = []
    if configured and webhook_id_missing:
        problems.append("PAYPAL_WEBHOOK_ID is missing: every PayPal webhook is refused")
    return ProviderHealth(status="degraded" if problems else "ok", problems=tuple(problems),
                          details={"configured": configured, "webhook_id_missing": webhook_id_missing,
                                   "api_base": settings.PAYPAL_API_BASE})
