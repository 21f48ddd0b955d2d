"""The Lemon Squeezy section of /healthz."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from payments.models import ProviderEventStatus
from payments.providers.base import ProviderHealth
from payments.providers.lemonsqueezy import client
from payments.providers.lemonsqueezy.models import LemonSqueezyEvent


def lemonsqueezy_health(*, deep: bool = False) -> ProviderHealth:
    """Whether Lemon Squeezy can be used. Degraded (reported; HTTP stays 200) when the keys are set but the
    signing secret is missing (every webhook would be refused, so no subscription would be mirrored), when
    stored events failed processing in the last hour (replay them: admin or `lemonsqueezy_events replay`),
    or, with `deep` (`client.api_probe`: one authenticated read of the store), degraded when Lemon Squeezy is
    slow, unreachable or answers 5xx and down when it refuses our key; the probe is in `details["api"]`."""
    configured = client.is_configured()
    secret_missing = not settings.LEMONSQUEEZY_SIGNING_SECRET
    since = timezone.now() - timedelta(hours=1)
    failed = (LemonSqueezyEvent.objects.filter(received_at__gte=since, status=ProviderEventStatus.FAILED).count()
              if configured else 0)
    problems = []
    if configured and secret_missing:
        problems.append(_("LEMONSQUEEZY_SIGNING_SECRET is missing: every Lemon Squeezy webhook is refused"))
    if failed:
        problems.append(ngettext("%(count)d Lemon Squeezy webhook event failed processing in the last hour",
                                 "%(count)d Lemon Squeezy webhook events failed processing in the last hour",
                                 failed) % {"count": failed})
    return ProviderHealth.of(problems=problems, probe=client.api_probe() if deep and configured else None,
                             details={"configured": configured, "signing_secret_missing": secret_missing,
                                      "api_base": settings.LEMONSQUEEZY_API_BASE, "events_failed_last_hour": failed})
