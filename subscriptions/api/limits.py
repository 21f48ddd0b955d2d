"""Per-request limits a plan sets (beside the rate limits in throttling.py)."""

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
        f"Your plan ({client.plan_name}) accepts at most {client.batch_max} usage events per request "
        f"(usage_batch_max_events); this one has {size}. Send smaller batches or change plan.",
        extra={"limit": "usage_batch_max_events", "allowed": client.batch_max, "requested": size})
