"""/webhooks/lemonsqueezy/ end to end against the loopback Lemon Squeezy: verified by X-Signature, stored once
under a derived id, applied as a mirror of the subscription and its money (payments/providers/lemonsqueezy/)."""

import pytest

from credits.models import CreditLedgerEntry
from payments.models import (
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentStatus,
    ProviderAccount,
    ProviderEvent,
    ProviderEventStatus,
    ProviderSubscription,
)
from payments.providers.lemonsqueezy.models import LemonSqueezyEvent
from payments.providers.lemonsqueezy.webhooks.services import lemonsqueezy_event_replay
from payments.tests.providers.lemonsqueezy.support import buyer, deliver, plan_on_rail, post
from subscriptions.models import Subscription, SubscriptionEventKind, SubscriptionStatus

pytestmark = pytest.mark.django_db
S = SubscriptionStatus


def mirrored(customer) -> Subscription:
    return Subscription.objects.get(customer=customer)


def test_a_bad_or_missing_signature_is_refused_with_400_and_nothing_is_stored(client, lemonsqueezy_api):
    plan = plan_on_rail()
    _, custom = buyer(plan)
    event = lemonsqueezy_api.subscribe(variant_id="501", custom_data=custom)[1]
    body, _ = lemonsqueezy_api.signed(event)
    wrong = post(client, lemonsqueezy_api, event, secret="someone-else")
    missing = client.post("/webhooks/lemonsqueezy/", data=body, content_type="application/json")
    garbage = client.post("/webhooks/lemonsqueezy/", data=body, content_type="application/json",
                          headers={"X-Signature": "zz" * 40})
    assert [r.status_code for r in (wrong, missing, garbage)] == [400, 400, 400]
    assert wrong.json()["error"] == "signature_invalid" and missing.json()["error"] == "signature_missing"
    assert not ProviderEvent.objects.exists()


def test_without_a_signing_secret_every_delivery_is_refused(client, lemonsqueezy_api, settings):
    plan = plan_on_rail()
    _, custom = buyer(plan)
    event = lemonsqueezy_api.subscribe(variant_id="501", custom_data=custom)[1]
    settings.LEMONSQUEEZY_SIGNING_SECRET = ""
    response = post(client, lemonsqueezy_api, event)
    assert response.status_code == 400 and response.json()["error"] == "webhook_secret_missing"
    assert not ProviderEvent.objects.exists()


def test_a_signed_body_that_is_not_an_event_is_refused(client, lemonsqueezy_api):
    for event in ({"meta": {}, "data": {}}, {"meta": {"event_name": "x"}, "data": {"type": "orders", "id": "1"}},
                  ["not", "an", "object"]):
        body, headers = lemonsqueezy_api.signed(event)
        response = client.post("/webhooks/lemonsqueezy/", data=body, content_type="application/json", headers=headers)
        assert response.status_code == 400 and response.json()["error"] == "payload_invalid"
    assert not ProviderEvent.objects.exists()


def test_the_same_delivery_is_stored_once_under_its_derived_id(client, lemonsqueezy_api):
    plan = plan_on_rail()
    _, custom = buyer(plan)
    event = lemonsqueezy_api.subscribe(variant_id="501", custom_data=custom)[1]
    first, again = post(client, lemonsqueezy_api, event), post(client, lemonsqueezy_api, event)
    sub_id, updated_at = event["data"]["id"], event["data"]["attributes"]["updated_at"]
    assert first.json()["id"] == f"subscription_created:subscriptions:{sub_id}:{updated_at}"
    assert first.json()["duplicate"] is False and again.json()["duplicate"] is True
    assert LemonSqueezyEvent.objects.count() == 1


def test_a_paid_checkout_mirrors_the_subscription_and_records_one_paid_invoice_payment_and_credits(
        client, lemonsqueezy_api):
    plan = plan_on_rail(credits=300)
    customer, custom = buyer(plan)
    events = lemonsqueezy_api.subscribe(variant_id="501", custom_data=custom, total=2750)
    deliver(client, lemonsqueezy_api, *events)
    subscription = mirrored(customer)
    assert subscription.status == S.ACTIVE and subscription.billed_by == "lemonsqueezy" and subscription.plan == plan
    mirror = ProviderSubscription.objects.get(subscription=subscription)
    assert mirror.provider_subscription_id == events[1]["data"]["id"]
    assert ProviderAccount.objects.get(customer=customer, provider="lemonsqueezy").provider_customer_id
    invoice = Invoice.objects.get(subscription=subscription)
    assert invoice.status == InvoiceStatus.PAID and invoice.total == 2750 and invoice.next_attempt_at is None
    payment = Payment.objects.get(invoice=invoice)
    # The order and the initial subscription invoice are the same money: one payment holds both ids.
    assert payment.status == PaymentStatus.SUCCEEDED and payment.method == "lemonsqueezy"
    assert payment.provider_payment_id == f"order-{events[0]['data']['id']}"
    assert payment.provider_charge_id == f"subscription-invoice-{events[2]['data']['id']}"
    grants = CreditLedgerEntry.objects.filter(customer=customer, kind="grant")
    assert [g.amount for g in grants] == [300]
    assert set(LemonSqueezyEvent.objects.values_list("status", flat=True)) <= {ProviderEventStatus.PROCESSED,
                                                                                ProviderEventStatus.IGNORED}


def test_a_payment_that_overtakes_its_subscription_is_parked_then_applied_once_the_mirror_exists(
        client, lemonsqueezy_api):
    plan = plan_on_rail()
    customer, custom = buyer(plan)
    order, created, paid = lemonsqueezy_api.subscribe(variant_id="501", custom_data=custom)
    deliver(client, lemonsqueezy_api, paid, order)
    assert set(LemonSqueezyEvent.objects.values_list("status", flat=True)) == {ProviderEventStatus.FAILED}
    assert "not mirrored yet" in LemonSqueezyEvent.objects.first().error
    deliver(client, lemonsqueezy_api, created)
    assert not LemonSqueezyEvent.objects.filter(status=ProviderEventStatus.FAILED).exists()
    assert Payment.objects.filter(customer=customer).count() == 1
    assert Invoice.objects.get(subscription=mirrored(customer)).status == InvoiceStatus.PAID


def test_renewals_each_pay_one_period_and_award_its_credits_once(client, lemonsqueezy_api):
    plan = plan_on_rail(credits=50)
    customer, custom = buyer(plan)
    events = lemonsqueezy_api.subscribe(variant_id="501", custom_data=custom)
    sub_id = events[1]["data"]["id"]
    events += lemonsqueezy_api.renew(sub_id) + lemonsqueezy_api.renew(sub_id)
    deliver(client, lemonsqueezy_api, *events, *events)
    invoices = Invoice.objects.filter(subscription=mirrored(customer)).order_by("period_start")
    assert [i.status for i in invoices] == [InvoiceStatus.PAID] * 3
    assert len({i.period_start for i in invoices}) == 3
    assert CreditLedgerEntry.objects.filter(customer=customer, kind="grant").count() == 3


def test_a_failed_renewal_leaves_the_invoice_open_for_lemon_squeezy_and_the_mirror_past_due(
        client, lemonsqueezy_api):
    plan = plan_on_rail()
    customer, custom = buyer(plan)
    events = lemonsqueezy_api.subscribe(variant_id="501", custom_data=custom)
    events += lemonsqueezy_api.renew(events[1]["data"]["id"], paid=False)
    deliver(client, lemonsqueezy_api, *events)
    subscription = mirrored(customer)
    open_invoice = Invoice.objects.get(subscription=subscription, status=InvoiceStatus.OPEN)
    assert subscription.status == S.PAST_DUE and open_invoice.next_attempt_at is None
    assert not Payment.objects.filter(invoice=open_invoice).exists()


def test_a_refund_is_recorded_once_however_often_it_is_reported(client, lemonsqueezy_api):
    plan = plan_on_rail()
    customer, custom = buyer(plan)
    events = lemonsqueezy_api.subscribe(variant_id="501", custom_data=custom, total=2000)
    partial = lemonsqueezy_api.refund(events[2]["data"]["id"], 500)
    full = lemonsqueezy_api.refund(events[2]["data"]["id"], 2000)
    deliver(client, lemonsqueezy_api, *events, full, partial, full)
    payment = Payment.objects.get(customer=customer)
    assert payment.amount_refunded == 2000 and payment.status == PaymentStatus.REFUNDED
    assert sum(payment.refunds.values_list("amount", flat=True)) == 2000


def test_cancel_resume_pause_unpause_and_expire_move_the_mirror_through_its_transitions(client, lemonsqueezy_api):
    plan = plan_on_rail()
    customer, custom = buyer(plan)
    sub_id = lemonsqueezy_api.subscribe(variant_id="501", custom_data=custom)[1]["data"]["id"]
    deliver(client, lemonsqueezy_api, *lemonsqueezy_api.sent)
    steps = [({"cancelled": True}, S.ACTIVE, True), ({"cancelled": False}, S.ACTIVE, False),
             ({"pause": {"mode": "void"}}, S.PAUSED, False), ({"pause": None}, S.ACTIVE, False)]
    for attributes, status, scheduled in steps:
        lemonsqueezy_api.sent.clear()
        lemonsqueezy_api.patch_subscription(sub_id, attributes)
        deliver(client, lemonsqueezy_api, *lemonsqueezy_api.sent)
        subscription = mirrored(customer)
        assert (subscription.status, subscription.cancel_at_period_end) == (status, scheduled)
    deliver(client, lemonsqueezy_api, lemonsqueezy_api.expire(sub_id))
    subscription = Subscription.objects.get(customer=customer)
    assert subscription.status == S.CANCELED and subscription.ended_at is not None
    kinds = list(subscription.events.order_by("pk").values_list("kind", flat=True))
    scheduled, withdrawn = SubscriptionEventKind.CANCEL_SCHEDULED, SubscriptionEventKind.CANCEL_UNSCHEDULED
    assert kinds.count(scheduled) == kinds.count(withdrawn) == 1
    assert subscription.events.order_by("pk").last().to_status == S.CANCELED


def test_a_cancelled_subscription_that_expires_is_canceled_without_a_withdrawn_cancellation(client, lemonsqueezy_api):
    plan = plan_on_rail()
    customer, custom = buyer(plan)
    sub_id = lemonsqueezy_api.subscribe(variant_id="501", custom_data=custom)[1]["data"]["id"]
    lemonsqueezy_api.patch_subscription(sub_id, {"cancelled": True})
    lemonsqueezy_api.expire(sub_id)
    deliver(client, lemonsqueezy_api, *lemonsqueezy_api.sent)
    subscription = mirrored(customer)
    kinds = list(subscription.events.values_list("kind", flat=True))
    assert subscription.status == S.CANCELED and not subscription.cancel_at_period_end
    assert SubscriptionEventKind.CANCEL_UNSCHEDULED not in kinds


def test_a_plan_change_at_lemon_squeezy_moves_the_mirror_to_the_mapped_plan(client, lemonsqueezy_api):
    plan, bigger = plan_on_rail(variant_id="501"), plan_on_rail(variant_id="502")
    customer, custom = buyer(plan)
    sub_id = lemonsqueezy_api.subscribe(variant_id="501", custom_data=custom)[1]["data"]["id"]
    lemonsqueezy_api.patch_subscription(sub_id, {"variant_id": 502})
    deliver(client, lemonsqueezy_api, *lemonsqueezy_api.sent)
    assert mirrored(customer).plan == bigger


def test_an_unmapped_variant_fails_the_event_and_a_replay_applies_it_once_mapped(client, lemonsqueezy_api, actor):
    plan = plan_on_rail(variant_id="501")
    customer, custom = buyer(plan)
    created = lemonsqueezy_api.subscribe(variant_id="999", custom_data=custom)[1]
    deliver(client, lemonsqueezy_api, created)
    event = LemonSqueezyEvent.objects.get(type="subscription_created")
    assert event.status == ProviderEventStatus.FAILED and "variant 999" in event.error
    assert not Subscription.objects.filter(customer=customer).exists()
    plan.provider_prices.update(provider_price_id="999")
    lemonsqueezy_event_replay(actor=actor, failed_only=True)
    assert mirrored(customer).status == S.ACTIVE


def test_a_customer_with_a_live_subscription_of_ours_is_not_given_a_second_one(client, lemonsqueezy_api):
    from subscriptions.tests.factories import SubscriptionFactory

    plan = plan_on_rail()
    customer, custom = buyer(plan)
    ours = SubscriptionFactory(customer=customer, status=S.ACTIVE)
    deliver(client, lemonsqueezy_api, lemonsqueezy_api.subscribe(variant_id="501", custom_data=custom)[1])
    event = LemonSqueezyEvent.objects.get(type="subscription_created")
    assert event.status == ProviderEventStatus.FAILED and f"#{ours.pk}" in event.error
    assert list(Subscription.objects.filter(customer=customer)) == [ours]


def test_an_order_for_a_product_that_is_no_plan_of_ours_is_ignored(client, lemonsqueezy_api):
    plan = plan_on_rail(variant_id="501")
    _, custom = buyer(plan)
    order = lemonsqueezy_api.subscribe(variant_id="888", custom_data=custom)[0]
    deliver(client, lemonsqueezy_api, order)
    assert LemonSqueezyEvent.objects.get().status == ProviderEventStatus.IGNORED
    assert not Payment.objects.exists()
