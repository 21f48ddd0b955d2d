"""Mirrored, never double (hypothesis): whatever life a Lemon Squeezy subscription has (renewals paid or
failed, cancel, resume, pause, unpause, plan change, refund, expiry) and whatever order and however many
times its webhooks arrive, our mirror ends in Lemon Squeezy's final state, each paid period has exactly one
paid invoice, one payment and one credit grant, refunds are counted once, and our own billing run never
invoices, charges or duns it."""

from datetime import timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.audit import Actor
from credits.models import CreditLedgerEntry
from payments.billing.run import billing_run
from payments.models import Invoice, InvoiceStatus, Payment, ProviderEventStatus
from payments.providers.lemonsqueezy.models import LemonSqueezyEvent
from payments.providers.lemonsqueezy.payloads import SUBSCRIPTION_STATUS, parse_time
from payments.providers.lemonsqueezy.webhooks.services import lemonsqueezy_event_receive
from payments.tests.providers.lemonsqueezy.support import buyer, jobs_drain, plan_on_rail
from subscriptions.models import Subscription

pytestmark = pytest.mark.django_db(transaction=False)

OPS = ("renew_paid", "renew_failed", "cancel", "resume", "pause", "unpause", "plan", "refund")


class _Rollback(Exception):
    pass


def _live(peer, sub_id: str, ops: list[str]) -> dict:
    """Play `ops` at the peer (those that make sense in the subscription's state); returns what happened."""
    counts = {"paid": 1, "failed": 0, "refunded": 0}
    initial_invoice = next(iter(peer.invoices))
    for op in ops:
        status = peer.subscriptions[sub_id]["attributes"]["status"]
        if op in ("renew_paid", "renew_failed") and status in ("active", "past_due"):
            peer.renew(sub_id, paid=op == "renew_paid")
            counts["paid" if op == "renew_paid" else "failed"] += 1
        elif op == "cancel" and status == "active":
            peer.patch_subscription(sub_id, {"cancelled": True})
        elif op == "resume" and status == "cancelled":
            peer.patch_subscription(sub_id, {"cancelled": False})
        elif op == "pause" and status == "active":
            peer.patch_subscription(sub_id, {"pause": {"mode": "void"}})
        elif op == "unpause" and status == "paused":
            peer.patch_subscription(sub_id, {"pause": None})
        elif op == "plan" and status in ("active", "past_due"):
            current = peer.subscriptions[sub_id]["attributes"]["variant_id"]
            peer.patch_subscription(sub_id, {"variant_id": 502 if current == 501 else 501})
        elif op == "refund" and not counts["refunded"]:
            peer.refund(initial_invoice, 2500)
            counts["refunded"] = 2500
    return counts


def _deliver(peer, events: list[dict]) -> None:
    for event in events:
        body, headers = peer.signed(event)
        lemonsqueezy_event_receive(body=body, headers=headers)
        jobs_drain()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(ops=st.lists(st.sampled_from(OPS), max_size=7), expire=st.booleans(), data=st.data())
def test_shuffled_and_repeated_events_mirror_the_final_state_and_never_double(lemonsqueezy_api, ops, expire, data):
    peer = lemonsqueezy_api
    try:
        with transaction.atomic():
            peer.reset()
            plans = {501: plan_on_rail(variant_id="501"), 502: plan_on_rail(variant_id="502")}
            customer, custom = buyer(plans[501])
            sub_id = peer.subscribe(variant_id="501", custom_data=custom, total=2500)[1]["data"]["id"]
            counts = _live(peer, sub_id, ops)
            if expire:
                peer.expire(sub_id)
            events = data.draw(st.permutations(peer.sent), label="delivery order")
            repeats = data.draw(st.lists(st.sampled_from(peer.sent), max_size=4), label="redeliveries")
            _deliver(peer, [*events, *repeats])
            _assert_mirrored(peer, sub_id, customer, plans, counts)
            raise _Rollback
    except _Rollback:
        pass


def _assert_mirrored(peer, sub_id: str, customer, plans: dict, counts: dict) -> None:
    final = peer.subscriptions[sub_id]["attributes"]
    subscription = Subscription.objects.get(customer=customer)
    assert not LemonSqueezyEvent.objects.filter(status__in=[ProviderEventStatus.FAILED,
                                                            ProviderEventStatus.PENDING]).exists()
    assert subscription.status == SUBSCRIPTION_STATUS[final["status"]]
    assert subscription.cancel_at_period_end == (final["status"] == "cancelled")
    assert subscription.plan == plans[final["variant_id"]]
    invoices = Invoice.objects.filter(subscription=subscription)
    assert invoices.filter(status=InvoiceStatus.PAID).count() == counts["paid"]
    assert invoices.filter(status=InvoiceStatus.OPEN).count() == counts["failed"]
    payments = Payment.objects.filter(customer=customer)
    assert payments.count() == counts["paid"]
    assert sum(payments.values_list("amount_refunded", flat=True)) == counts["refunded"]
    assert CreditLedgerEntry.objects.filter(customer=customer, kind="grant").count() == counts["paid"]
    # Our own run, long after, neither renews, invoices, charges nor duns the mirrored subscription.
    before = (invoices.count(), payments.count(), subscription.status, subscription.current_period_end)
    billing_run(as_of=parse_time(final["updated_at"]) + timedelta(days=400), actor=Actor.system("test-run"))
    subscription.refresh_from_db()
    assert (invoices.count(), payments.count(), subscription.status, subscription.current_period_end) == before
