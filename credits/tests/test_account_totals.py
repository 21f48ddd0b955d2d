"""A customer's credit account totals (purchased, granted, used, expired, used this period, next refill):
from the ledger, in the API's balance and on the customer's admin page."""

from datetime import timedelta

import pytest

from billing_project.tests.admin_helpers import change_url
from billing_project.tests.api_support import api_customer
from core.audit import Actor
from credits.models import CreditLedgerEntry, CreditSource, LedgerKind
from credits.selectors import credit_account_totals
from credits.services import credit_debit, credit_grant
from subscriptions.models import SubscriptionStatus
from subscriptions.tests.factories import PlanFactory

ACTOR = Actor.system("test")
pytestmark = pytest.mark.django_db


def _book(customer) -> None:
    credit_grant(customer=customer, amount=500, source=CreditSource.PURCHASE, actor=ACTOR)
    credit_grant(customer=customer, amount=100, source=CreditSource.PROMOTION, actor=ACTOR)
    credit_grant(customer=customer, amount=40, source=CreditSource.PLAN_REFILL, actor=ACTOR)
    credit_debit(customer=customer, amount=70, actor=ACTOR, reason="calls")
    credit_debit(customer=customer, amount=30, actor=ACTOR, reason="calls")


def test_totals_add_up_to_the_balance_and_split_by_source():
    caller = api_customer()
    _book(caller.customer)
    old = CreditLedgerEntry.objects.filter(kind=LedgerKind.DEBIT).order_by("id").first()
    CreditLedgerEntry.objects.filter(pk=old.pk).update(  # spent before the current period began
        created_at=caller.subscription.current_period_start - timedelta(days=1))
    totals = credit_account_totals(customer=caller.customer)
    assert (totals.purchased, totals.granted, totals.used, totals.expired, totals.adjusted) == (500, 140, 100, 0, 0)
    assert totals.balance == 540 == totals.purchased + totals.granted - totals.used - totals.expired + totals.adjusted
    assert totals.used_this_period == 30


def test_the_next_refill_is_the_plan_in_force_next_period():
    caller = api_customer(credits_per_period=1000)
    sub = caller.subscription
    refill = credit_account_totals(customer=caller.customer).next_refill
    assert (refill.at, refill.credits) == (sub.current_period_end, 1000)
    sub.scheduled_plan = PlanFactory(credits_per_period=250)
    sub.save()
    assert credit_account_totals(customer=caller.customer).next_refill.credits == 250
    sub.cancel_at_period_end = True
    sub.save()
    assert credit_account_totals(customer=caller.customer).next_refill is None
    sub.cancel_at_period_end, sub.status = False, SubscriptionStatus.PAUSED
    sub.save()
    assert credit_account_totals(customer=caller.customer).next_refill is None


def test_the_balance_endpoint_answers_the_totals():
    caller = api_customer(credits_per_period=1000)
    _book(caller.customer)
    body = caller.client.get("/api/v1/credits/balance/").json()
    assert {k: body[k] for k in ("balance", "purchased", "granted", "used", "expired", "used_this_period")} == {
        "balance": 540, "purchased": 500, "granted": 140, "used": 100, "expired": 0, "used_this_period": 100}
    assert body["next_refill"]["credits"] == 1000 and body["period_end"] is not None


def test_a_customer_without_subscription_has_no_period_and_no_refill():
    caller = api_customer(subscribed=False)
    totals = credit_account_totals(customer=caller.customer)
    assert (totals.balance, totals.used_this_period, totals.period_start, totals.next_refill) == (0, 0, None, None)


def test_the_customer_admin_page_shows_the_totals(admin_client):
    caller = api_customer(credits_per_period=1000)
    _book(caller.customer)
    page = admin_client.get(change_url(caller.customer)).content.decode()
    assert '<th scope="row">Purchased</th><td>500</td>' in page
    assert '<th scope="row">Used this period</th><td>100</td>' in page
    assert f"1000 on {caller.subscription.current_period_end:%Y-%m-%d}" in page
