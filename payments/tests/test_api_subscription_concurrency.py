"""Concurrent plan changes, pauses, resumes and cancels of one subscription through the API, on real
PostgreSQL connections (one APIClient and one connection per thread)."""

from functools import partial

import pytest

from billing_project.tests.api_support import api_customer, token_client
from billing_project.tests.threads import race
from payments.models import BillingReason, Invoice
from subscriptions.models import Subscription, SubscriptionEvent, SubscriptionEventKind, SubscriptionStatus
from subscriptions.tests.factories import PlanFactory

pytestmark = pytest.mark.django_db(transaction=True)

S = SubscriptionStatus


def _post(user, path, body):
    response = token_client(user).post(path, body, format="json")
    return path.rstrip("/").rsplit("/", 1)[1], response.status_code, response.json()


def _race(user, subscription, moves):
    base = f"/api/v1/subscriptions/{subscription.pk}"
    outcome = race([partial(_post, user, f"{base}/{name}/", body) for name, body in moves], join_timeout=120)
    assert outcome.errors == []
    assert len(outcome.results) == len(moves)
    for _name, status, body in outcome.results:
        assert status in (200, 409), body
        if status == 409:
            assert body["error"]["type"] == "billing_error" and body["error"]["code"]
    return [name for name, status, _ in outcome.results if status == 200]


def _assert_audit_matches_state(subscription, *, start_plan, answered_200: int):
    """Replaying the audit rows from creation gives the final row; every 200 wrote exactly one of them;
    every immediate plan change has its own prorated invoice and no invoice is counted twice."""
    subscription = Subscription.objects.get(pk=subscription.pk)
    events = list(SubscriptionEvent.objects.filter(subscription=subscription).order_by("created_at", "id"))
    status, plan = S.ACTIVE, start_plan.pk
    for event in events:
        if event.kind == SubscriptionEventKind.STATUS_CHANGED:
            assert event.from_status == status
            status = event.to_status
        elif event.kind == SubscriptionEventKind.PLAN_CHANGED:
            assert event.from_plan_id == plan and event.from_status == status
            plan = event.to_plan_id
    assert (status, plan) == (subscription.status, subscription.plan_id)
    assert len(events) == answered_200
    changed = [e for e in events if e.kind == SubscriptionEventKind.PLAN_CHANGED]
    invoiced = [e.data["invoice_id"] for e in changed if e.data.get("invoice_id")]
    updates = Invoice.objects.filter(subscription=subscription, billing_reason=BillingReason.SUBSCRIPTION_UPDATE)
    assert sorted(invoiced) == sorted(updates.values_list("pk", flat=True))
    assert len(set(invoiced)) == len(invoiced)


def test_mixed_plan_changes_pauses_resumes_and_cancels_answer_200_or_409_and_leave_a_legal_audited_state():
    caller = api_customer(amount=1000)
    upgrade, bigger, downgrade = PlanFactory(amount=3000), PlanFactory(amount=5000), PlanFactory(amount=500)
    user, subscription = caller.customer.user, caller.subscription
    # One cancel at the period end in the whole test: a repeated one answers 200 without an audit row.
    first_round = [("change-plan", {"plan": upgrade.pk}), ("change-plan", {"plan": upgrade.pk}),
                   ("change-plan", {"plan": bigger.pk}), ("change-plan", {"plan": downgrade.pk}),
                   ("pause", {}), ("pause", {}), ("resume", {}), ("resume", {}),
                   ("cancel", {"at_period_end": True})]
    ok = _race(user, subscription, first_round)
    assert ok  # the first racer to take the lock always finds a legal move
    _assert_audit_matches_state(subscription, start_plan=caller.plan, answered_200=len(ok))

    second_round = [("change-plan", {"plan": upgrade.pk}), ("change-plan", {"plan": bigger.pk}), ("pause", {}),
                    ("resume", {}), ("cancel", {}), ("cancel", {})]
    ok_again = _race(user, subscription, second_round)
    _assert_audit_matches_state(subscription, start_plan=caller.plan, answered_200=len(ok) + len(ok_again))
    subscription.refresh_from_db()
    # Exactly one cancel-now can win, and nothing moves a canceled subscription afterwards.
    assert ok_again.count("cancel") <= 1
    assert subscription.status == S.CANCELED or "cancel" not in ok_again
