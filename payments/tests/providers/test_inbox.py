"""The shared webhook inbox (payments.providers.inbox): a delivery is stored and acknowledged in the
request, its apply job deferred in the same transaction, and applied once by the job, through its rail."""

import itertools
import random
import time

import pytest
from django.db import transaction

from core.tests.jobs_support import jobs_queued, jobs_run_queued
from payments.models import PaymentStatus, ProviderEvent, ProviderEventStatus
from payments.providers import ProviderBase
from payments.providers.inbox import (
    PROVIDER_EVENT_APPLY_TASK,
    VerifiedEvent,
    provider_event_apply,
    provider_event_store,
)
from payments.providers.stripe.models import StripeEvent
from payments.tasks import provider_event_apply as provider_event_apply_task
from payments.tests.providers.stripe.test_webhooks import (
    final_state,
    payment_history,
    stripe_payment_for_new_invoice,
    succeeded_event,
)
from payments.tests.stripe_support import deliver

pytestmark = pytest.mark.django_db

# Events the test rail below was asked to apply, by inbox row id.
APPLIED_BY_TEST_RAIL: list[int] = []


def applied_by_test_rail(*, event_pk: int) -> ProviderEvent:
    APPLIED_BY_TEST_RAIL.append(event_pk)
    return ProviderEvent.objects.get(pk=event_pk)


class InboxTestRail(ProviderBase):
    """Another rail on the same inbox: plugged in by naming its apply function, nothing else."""

    code = "paypal"
    codes = frozenset({"paypal"})
    webhook_event_apply = "payments.tests.providers.test_inbox.applied_by_test_rail"


class Rollback(Exception):
    pass


def _verified(event_id: str = "EV-1") -> VerifiedEvent:
    return VerifiedEvent(provider="paypal", event_id=event_id, type="PAYMENT.CAPTURE.COMPLETED",
                         payload={"id": event_id})


def test_a_delivery_is_acknowledged_and_left_pending_until_its_job_runs(client, webhook_secret):
    payment = stripe_payment_for_new_invoice()

    response = deliver(client, succeeded_event(payment), apply=False)

    payment.refresh_from_db()
    stored = StripeEvent.objects.get()
    assert response.status_code == 200 and response.json()["status"] == ProviderEventStatus.PENDING
    assert stored.status == ProviderEventStatus.PENDING and payment.status == PaymentStatus.PENDING
    assert [job.args for job in jobs_queued(task_name=PROVIDER_EVENT_APPLY_TASK)] == [
        {"provider_event_id": stored.pk}]

    assert jobs_run_queued(task_name=PROVIDER_EVENT_APPLY_TASK) == 1
    payment.refresh_from_db()
    stored.refresh_from_db()
    assert stored.status == ProviderEventStatus.PROCESSED and payment.status == PaymentStatus.SUCCEEDED


def test_a_rolled_back_store_defers_nothing():
    with pytest.raises(Rollback), transaction.atomic():
        provider_event_store(verified=_verified())
        raise Rollback

    assert not ProviderEvent.objects.exists()
    assert jobs_queued(task_name=PROVIDER_EVENT_APPLY_TASK) == []


def test_duplicate_deliveries_defer_one_job_and_apply_once(client, webhook_secret):
    payment = stripe_payment_for_new_invoice()
    event = succeeded_event(payment)

    answers = [deliver(client, event, apply=False).json()["duplicate"] for _ in range(3)]

    assert answers == [False, True, True]
    assert len(jobs_queued(task_name=PROVIDER_EVENT_APPLY_TASK)) == 1
    jobs_run_queued(task_name=PROVIDER_EVENT_APPLY_TASK)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and payment.status_changes.count() == 1


def test_a_job_run_twice_applies_once(client, webhook_secret):
    payment = stripe_payment_for_new_invoice()
    deliver(client, succeeded_event(payment), apply=False)
    [job] = jobs_queued(task_name=PROVIDER_EVENT_APPLY_TASK)

    outcomes = [provider_event_apply_task(**job.args) for _ in range(2)]

    stored = StripeEvent.objects.get()
    assert outcomes == [ProviderEventStatus.PROCESSED, ProviderEventStatus.PROCESSED]
    assert stored.attempts == 1 and payment.status_changes.count() == 1


def test_jobs_run_in_any_order_end_in_the_state_of_ordered_deliveries(client, webhook_secret):
    t0 = int(time.time()) - 120
    orders = list(itertools.permutations(range(5)))
    states = set()
    for order in [orders[0], orders[-1], *random.Random(16).sample(orders[1:-1], 6)]:
        payment = stripe_payment_for_new_invoice()
        for event in payment_history(payment, t0):
            deliver(client, event, apply=False)
        jobs = jobs_queued(task_name=PROVIDER_EVENT_APPLY_TASK)
        for index in order:
            provider_event_apply_task(**jobs[index].args)
        jobs_run_queued(task_name=PROVIDER_EVENT_APPLY_TASK)  # takes them off the queue: all applied already
        states.add(final_state(payment))
    assert states == {("partially_refunded", 700, 1, 1, "paid", 2500, "active")}


def test_the_inbox_hands_an_event_to_the_rail_that_stored_it(settings):
    settings.PAYMENT_PROVIDERS = ["payments.tests.providers.test_inbox.InboxTestRail"]
    APPLIED_BY_TEST_RAIL.clear()
    stored = provider_event_store(verified=_verified())

    assert provider_event_apply(provider_event_id=stored.event.pk) == stored.event
    assert [stored.event.pk] == APPLIED_BY_TEST_RAIL


def test_an_event_of_a_rail_no_longer_installed_stays_pending(settings):
    settings.PAYMENT_PROVIDERS = ["payments.tests.providers.test_inbox.InboxTestRail"]
    stored = provider_event_store(verified=_verified())
    settings.PAYMENT_PROVIDERS = []

    assert provider_event_apply(provider_event_id=stored.event.pk).status == ProviderEventStatus.PENDING
