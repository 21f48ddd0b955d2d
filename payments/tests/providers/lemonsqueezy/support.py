"""Helpers shared by the Lemon Squeezy tests: a plan sold through a variant, and webhook deliveries run
as a worker would."""

from core.tests.jobs_support import jobs_run_queued
from payments.models import ProviderPlanPrice
from payments.providers.inbox import PROVIDER_EVENT_APPLY_TASK
from subscriptions.tests.factories import CustomerFactory, PlanFactory

LEMONSQUEEZY = "lemonsqueezy"


def plan_on_rail(*, variant_id: str = "501", credits: int = 100, **fields):
    plan = PlanFactory(amount=2500, trial_days=0, credits_per_period=credits, **fields)
    ProviderPlanPrice.objects.create(plan=plan, provider=LEMONSQUEEZY, provider_price_id=variant_id,
                                     provider_product_id="77")
    return plan


def buyer(plan):
    customer = CustomerFactory()
    return customer, {"customer_id": str(customer.pk), "plan_id": str(plan.pk)}


def jobs_drain() -> int:
    """Run apply jobs until none is queued (an applied event may put parked ones back on the queue)."""
    ran = total = jobs_run_queued(task_name=PROVIDER_EVENT_APPLY_TASK)
    while ran:
        ran = jobs_run_queued(task_name=PROVIDER_EVENT_APPLY_TASK)
        total += ran
    return total


def post(client, peer, event, **signing):
    body, headers = peer.signed(event, **signing)
    return client.post("/webhooks/lemonsqueezy/", data=body, content_type="application/json", headers=headers)


def deliver(client, peer, *events):
    """POST each signed delivery, then run the apply jobs they queued, as a worker would."""
    responses = [post(client, peer, event) for event in events]
    jobs_drain()
    return responses
