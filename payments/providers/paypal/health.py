"""The PayPal section of /healthz."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from payments.models import ProviderEventStatus
from payments.providers.base import ProviderHealth
from payments.providers.paypal import client
from payments.providers.paypal.models import PayPalEvent


def paypal_health(*, deep: bool = False) -> ProviderHealth:
    """Whether PayPal can be used. Degraded (reported; HTTP stays 200, PayPal is not what keeps the app
    alive) when the keys are set but the webhook id is missing (every PayPal webhook would be refused), or
    when stored events failed processing in the last hour (replay them: admin or `paypal_events replay`).
    `deep` (`/healthz?deep=1`) also fetches or reuses the OAuth token and makes one cheap authenticated GET
    within PAYPAL_TIMEOUT (`client.api_probe`): degraded when PayPal is slow to answer or answers 5xx, down
    when it refuses our credentials; its outcome and latency are in `details["api"]`."""
    configured = client.is_configured()
    webhook_id_missing = not settings.PAYPAL_WEBHOOK_ID
    since = timezone.now() - timedelta(hours=1)
    # Only a configured rail is asked (one query): /healthz stays cheap where PayPal is not used.
    failed = (PayPalEvent.objects.filter(received_at__gte=since, status=ProviderEventStatus.FAILED).count()
              if configured else 0)
    problems = []
    if configured and webhook_id_missing:
        problems.append(_("PAYPAL_WEBHOOK_ID is missing: every PayPal webhook is refused"))
    if failed:
        problems.append(ngettext("%(count)d PayPal webhook event failed processing in the last hour",
                                 "%(count)d PayPal webhook events failed processing in the last hour",
                                 failed) % {"count": failed})
    return ProviderHealth.of(problems=problems, probe=client.api_probe() if deep and configured else None,
                             details={"configured": configured, "webhook_id_missing": webhook_id_missing,
                                      "api_base": settings.PAYPAL_API_BASE, "events_failed_last_hour": failed})
