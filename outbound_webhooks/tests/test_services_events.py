"""Events are written by the transaction that causes them, numbered per object, for subscribed endpoints only."""

import pytest
from django.db import transaction

from billing_project.tests.threads import race
from core.jobs import jobs_suppressed
from core.tests.jobs_support import jobs_queued
from outbound_webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEvent
from outbound_webhooks.selectors import webhook_event_types_wanted
from outbound_webhooks.services import (
    WEBHOOK_DELIVER_TASK,
    WebhookEventInput,
    webhook_event_emit,
    webhook_events_emit_many,
)
from outbound_webhooks.tests.factories import WebhookEndpointFactory


def _emit(object_id: int = 7, event_type: str = "invoice.finalized") -> None:
    webhook_event_emit(event_type=event_type, object_type="invoice", object_id=object_id, data={"id": object_id})


@pytest.mark.django_db
def test_an_event_gets_one_delivery_and_one_job_per_enabled_endpoint_subscribed_to_its_type():
    first, second = WebhookEndpointFactory(), WebhookEndpointFactory()
    WebhookEndpointFactory(event_types=["payment.failed"])
    WebhookEndpointFactory(enabled=False)
    _emit()
    event = WebhookEvent.objects.get()
    assert (event.event_type, event.object_type, event.object_id) == ("invoice.finalized", "invoice", 7)
    assert event.sequence == 1
    deliveries = WebhookDelivery.objects.order_by("endpoint_id")
    assert [d.endpoint_id for d in deliveries] == [first.pk, second.pk]
    assert {d.status for d in deliveries} == {DeliveryStatus.PENDING}
    assert sorted(j.args["delivery_id"] for j in jobs_queued(task_name=WEBHOOK_DELIVER_TASK)) == sorted(
        d.pk for d in deliveries)


@pytest.mark.django_db
def test_nothing_is_written_when_no_endpoint_wants_the_event(django_assert_num_queries):
    WebhookEndpointFactory(event_types=["payment.failed"])
    with django_assert_num_queries(1):  # the subscriptions, read again after this test's endpoint change
        _emit()
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_a_system_without_endpoints_pays_no_query_per_emit(django_assert_num_queries):
    from core.memo import memos_forget

    memos_forget()
    with django_assert_num_queries(1):  # a fresh process reads the (empty) subscriptions once
        _emit()
    with django_assert_num_queries(0):
        _emit(object_id=8)
        webhook_events_emit_many(events=[WebhookEventInput("credits.low", "customer_credits", 3)])
        assert webhook_event_types_wanted() == set()
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_created_in_another_transaction_is_seen_by_the_next_emit(django_assert_num_queries):
    _emit()
    with transaction.atomic():
        endpoint = WebhookEndpointFactory()
    _emit(object_id=9)
    assert WebhookDelivery.objects.get().endpoint_id == endpoint.pk
    with django_assert_num_queries(0):  # warm again after the change: nothing wanted here
        _emit(event_type="credits.low")


@pytest.mark.django_db(transaction=True)
def test_disabling_or_deleting_an_endpoint_stops_its_deliveries_at_once():
    endpoint = WebhookEndpointFactory()
    _emit(object_id=1)
    endpoint.enabled = False
    endpoint.save()
    _emit(object_id=2)
    endpoint.enabled = True
    endpoint.save()
    _emit(object_id=3)
    assert sorted(WebhookEvent.objects.values_list("object_id", flat=True)) == [1, 3]


@pytest.mark.django_db
def test_an_endpoint_created_by_a_rolled_back_transaction_is_not_remembered():
    _emit()
    with pytest.raises(RuntimeError), transaction.atomic():
        WebhookEndpointFactory()
        _emit(object_id=4)  # sees its own transaction's endpoint, but does not keep it
        raise RuntimeError
    _emit(object_id=5)
    assert not WebhookEvent.objects.exists() and not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_no_event_is_recorded_while_the_module_is_off():
    from core.audit import Actor
    from modules.services import module_disable, module_enable

    WebhookEndpointFactory()
    module_disable(code="outbound_webhooks", actor=Actor.system("test"))
    _emit(object_id=1)
    assert not WebhookEvent.objects.exists()
    module_enable(code="outbound_webhooks", actor=Actor.system("test"))
    _emit(object_id=2)
    assert list(WebhookEvent.objects.values_list("object_id", flat=True)) == [2]


@pytest.mark.django_db
def test_each_object_numbers_its_events_in_order_also_inside_one_batch():
    WebhookEndpointFactory()
    _emit(object_id=7)
    webhook_events_emit_many(events=[
        WebhookEventInput("invoice.paid", "invoice", 7), WebhookEventInput("invoice.finalized", "invoice", 8),
        WebhookEventInput("invoice.finalized", "invoice", 7)])
    numbered = list(WebhookEvent.objects.order_by("pk").values_list("object_id", "sequence", "event_type"))
    assert numbered == [(7, 1, "invoice.finalized"), (7, 2, "invoice.paid"), (8, 1, "invoice.finalized"),
                        (7, 3, "invoice.finalized")]
    assert len({e.event_id for e in WebhookEvent.objects.all()}) == 4


@pytest.mark.django_db
def test_a_rolled_back_change_leaves_no_event_delivery_or_job():
    WebhookEndpointFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        _emit()
        raise RuntimeError("the change failed")
    assert not WebhookEvent.objects.exists() and not WebhookDelivery.objects.exists()
    assert jobs_queued(task_name=WEBHOOK_DELIVER_TASK) == []


@pytest.mark.django_db
def test_history_written_while_jobs_are_suppressed_emits_nothing():
    WebhookEndpointFactory()
    with jobs_suppressed():
        _emit()
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_transactions_never_give_one_object_the_same_sequence_number():
    WebhookEndpointFactory()

    def emit_three():
        with transaction.atomic():
            for _ in range(3):
                _emit()

    outcome = race([emit_three] * 4, join_timeout=60)
    assert outcome.errors == []
    assert sorted(WebhookEvent.objects.values_list("sequence", flat=True)) == list(range(1, 13))
