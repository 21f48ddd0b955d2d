"""Per-request limits a plan sets (beside the rate limits in throttling.py)."""

from django.utils.translation import gettext as _

from core.exceptions import BillingError
from subscriptions.api.client import ApiClient


class PlanLimitExceeded(BillingError):
    http_status = 403
    code = "plan_limit_exceeded"


def plan_batch_check(*, client: ApiClient, size: int) -> None:
    """Refuse a usage batch larger than the caller's plan allows (staff are not limited)."""
    if client.is_staff or not client.batch_max or size <= client.batch_max:
        return
    raise PlanLimitExceeded(
        _("Your plan (%(plan)s) accepts at most %(allowed)s usage events per request (usage_batch_max_events); "
          "this one has %(requested)s. Send smaller batches or change plan.")
        % {"plan": client.plan_name, "allowed": client.batch_max, "requested": size},
        extra={"limit": "usage_batch_max_events", "allowed": client.batch_max, "requested": size})
