"""Lemon Squeezy in both directions and around it: checkout through the API, cancel / pause / resume / plan
change asked from our API or admin (Lemon Squeezy is called, its webhook moves the mirror), usage reported
by the billing run, `payments reconcile --provider lemonsqueezy`, /healthz, and the selectors that keep our
run and dunning away from mirrored subscriptions."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from billing_project.tests.api_support import api_customer, staff_client
from core.audit import Actor
from core.exceptions import IllegalTransition
from payments.billing.dunning import invoices_due_for_collection
from payments.billing.renewals import RENEWALS, subscriptions_due
from payments.billing.run import billing_run
from payments.models import Invoice, InvoiceStatus, ProviderSubscription
from payments.tests.providers.lemonsqueezy.support import buyer, deliver, plan_on_rail
from subscriptions.models import Subscription, SubscriptionStatus
from subscriptions.services import subscription_cancel
from subscriptions.tests.factories import CustomerFactory, SubscriptionFactory
from usage.models import Meter, MeterPrice, UsageEvent

pytestmark = pytest.mark.django_db
S = SubscriptionStatus
URLS = {"success_url": "https://app.example.com/billing/done", "cancel_url": "https://app.example.com/billing"}


@pytest.fixture
def redirects(settings):
    settings.CHECKOUT_REDIRECT_HOSTS = ["app.example.com"]


def mirrored_subscription(client, peer, plan=None, **subscribe):
    plan = plan or plan_on_rail()
    customer, custom = buyer(plan)
    events = peer.subscribe(variant_id=plan.provider_prices.get().provider_price_id, custom_data=custom, **subscribe)
    deliver(client, peer, *events)
    peer.sent.clear()
    return Subscription.objects.get(customer=customer), events[1]["data"]["id"]


# ----------------------------------------------------------------------------- checkout


def test_checkout_hands_out_a_lemon_squeezy_url_carrying_our_customer_and_plan(lemonsqueezy_api, redirects):
    caller = api_customer(subscribed=False)
    plan = plan_on_rail(variant_id="601")
    response = caller.client.post("/api/v1/checkout/subscription/",
                                  {"plan": plan.pk, "provider": "lemonsqueezy", **URLS}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["url"].startswith("https://peer.lemonsqueezy.test/checkout/") and body["invoice"] is None
    sent = lemonsqueezy_api.checkouts[body["id"]]
    assert sent["attributes"]["checkout_data"]["custom"] == {"customer_id": str(caller.customer.pk),
                                                             "plan_id": str(plan.pk)}
    assert sent["relationships"]["variant"]["data"]["id"] == "601"
    assert not Subscription.objects.filter(customer=caller.customer).exists() and not Invoice.objects.exists()


def test_checkout_without_keys_answers_503_with_a_clear_message(settings, redirects):
    settings.LEMONSQUEEZY_API_KEY = settings.LEMONSQUEEZY_STORE_ID = ""
    caller = api_customer(subscribed=False)
    response = caller.client.post("/api/v1/checkout/subscription/",
                                  {"plan": plan_on_rail().pk, "provider": "lemonsqueezy", **URLS}, format="json")
    assert response.status_code == 503
    assert "LEMONSQUEEZY_API_KEY" in response.json()["error"]["message"]


def test_checkout_refuses_a_plan_without_a_variant_and_a_customer_already_subscribed(lemonsqueezy_api, redirects):
    from subscriptions.tests.factories import PlanFactory

    caller = api_customer(subscribed=False)
    unmapped = caller.client.post("/api/v1/checkout/subscription/",
                                  {"plan": PlanFactory(amount=900).pk, "provider": "lemonsqueezy", **URLS},
                                  format="json")
    subscribed = api_customer()
    again = subscribed.client.post("/api/v1/checkout/subscription/",
                                   {"plan": plan_on_rail().pk, "provider": "lemonsqueezy", **URLS}, format="json")
    assert unmapped.status_code == 400 and unmapped.json()["error"]["code"] == "plan_not_on_rail"
    assert again.status_code == 409 and again.json()["error"]["code"] == "subscription_exists"
    assert not lemonsqueezy_api.checkouts


# ----------------------------------------------------------------------------- both directions


def test_cancel_from_our_api_asks_lemon_squeezy_and_its_webhook_schedules_the_cancellation(client, lemonsqueezy_api):
    subscription, ls_id = mirrored_subscription(client, lemonsqueezy_api)
    response = staff_client().post(f"/api/v1/subscriptions/{subscription.pk}/cancel/", {"at_period_end": True},
                                   format="json")
    assert response.status_code == 200, response.content
    patch = [r for r in lemonsqueezy_api.requests if r["method"] == "PATCH"][-1]
    assert patch["path"] == f"/subscriptions/{ls_id}" and patch["body"]["data"]["attributes"] == {"cancelled": True}
    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end is False  # nothing of ours moves before the webhook
    deliver(client, lemonsqueezy_api, *lemonsqueezy_api.sent)
    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end is True and subscription.status == S.ACTIVE


def test_pause_resume_and_plan_change_from_our_api_follow_lemon_squeezy(client, lemonsqueezy_api):
    plan, bigger = plan_on_rail(variant_id="501"), plan_on_rail(variant_id="502")
    subscription, _ = mirrored_subscription(client, lemonsqueezy_api, plan=plan)
    staff = staff_client()
    for path, body, expected in (("pause/", {}, S.PAUSED), ("resume/", {}, S.ACTIVE)):
        assert staff.post(f"/api/v1/subscriptions/{subscription.pk}/{path}", body, format="json").status_code == 200
        deliver(client, lemonsqueezy_api, *lemonsqueezy_api.sent)
        lemonsqueezy_api.sent.clear()
        subscription.refresh_from_db()
        assert subscription.status == expected
    changed = staff.post(f"/api/v1/subscriptions/{subscription.pk}/change-plan/", {"plan": bigger.pk}, format="json")
    assert changed.status_code == 200, changed.content
    assert lemonsqueezy_api.requests[-1]["body"]["data"]["attributes"] == {"variant_id": 502}
    deliver(client, lemonsqueezy_api, *lemonsqueezy_api.sent)
    subscription.refresh_from_db()
    assert subscription.plan == bigger


def test_cancel_now_is_refused_because_lemon_squeezy_ends_at_the_period_end(client, lemonsqueezy_api):
    subscription, _ = mirrored_subscription(client, lemonsqueezy_api)
    response = staff_client().post(f"/api/v1/subscriptions/{subscription.pk}/cancel/", {"at_period_end": False},
                                   format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "cancel_at_period_end_only"
    assert not [r for r in lemonsqueezy_api.requests if r["method"] == "PATCH"]


def test_a_lemon_squeezy_outage_answers_502_and_changes_nothing(client, lemonsqueezy_api):
    subscription, _ = mirrored_subscription(client, lemonsqueezy_api)
    lemonsqueezy_api.fail_next()
    response = staff_client().post(f"/api/v1/subscriptions/{subscription.pk}/pause/", {}, format="json")
    subscription.refresh_from_db()
    assert response.status_code == 502 and subscription.status == S.ACTIVE and not lemonsqueezy_api.sent


def test_the_admin_cancel_action_goes_through_lemon_squeezy(client, admin_client, lemonsqueezy_api):
    subscription, ls_id = mirrored_subscription(client, lemonsqueezy_api)
    admin_client.post("/admin/subscriptions/subscription/", {"action": "cancel_at_period_end",
                                                             "_selected_action": [subscription.pk]})
    assert lemonsqueezy_api.subscriptions[ls_id]["attributes"]["status"] == "cancelled"


def test_our_own_services_refuse_to_change_a_mirrored_subscription(client, lemonsqueezy_api):
    subscription, _ = mirrored_subscription(client, lemonsqueezy_api)
    with pytest.raises(IllegalTransition) as refused:
        subscription_cancel(subscription=subscription, actor=Actor.system("test"))
    assert refused.value.code == "billed_elsewhere"


# ----------------------------------------------------------------------------- our run stays away


def test_renewals_dunning_and_forecast_selectors_skip_mirrored_subscriptions(client, lemonsqueezy_api):
    from payments.billing.forecast import billing_forecast

    mirrored, ls_id = mirrored_subscription(client, lemonsqueezy_api)
    deliver(client, lemonsqueezy_api, *lemonsqueezy_api.renew(ls_id, paid=False))
    ours = SubscriptionFactory(customer=CustomerFactory(), status=S.ACTIVE)
    late = timezone.now() + timedelta(days=900)
    Invoice.objects.filter(subscription=mirrored).update(next_attempt_at=timezone.now())
    assert list(subscriptions_due(step=RENEWALS, as_of=late)) == [ours]
    assert not invoices_due_for_collection(as_of=late).filter(subscription=mirrored).exists()
    assert {f.subscription_id for f in billing_forecast(now=timezone.now(), days=900)} == {ours.pk}


def test_the_billing_run_reports_usage_of_usage_priced_variants_as_set_records(client, lemonsqueezy_api):
    plan = plan_on_rail()
    meter = Meter.objects.create(code="calls", name="API calls")
    MeterPrice.objects.create(plan=plan, meter=meter, unit_amount=1)
    subscription, ls_id = mirrored_subscription(client, lemonsqueezy_api, plan=plan, usage_based=True)
    ProviderSubscription.objects.filter(subscription=subscription).update(anchor=timezone.now() - timedelta(days=1))
    Subscription.objects.filter(pk=subscription.pk).update(current_period_start=timezone.now() - timedelta(days=1),
                                                           current_period_end=timezone.now() + timedelta(days=20))
    for key in ("a", "b", "c"):
        UsageEvent.objects.create(customer=subscription.customer, meter=meter, quantity=2, idempotency_key=key,
                                  occurred_at=timezone.now() - timedelta(hours=1))
    first = billing_run(as_of=timezone.now(), actor=Actor.system("test"))
    again = billing_run(as_of=timezone.now(), actor=Actor.system("test"))
    item = lemonsqueezy_api.subscriptions[ls_id]["attributes"]["first_subscription_item"]["id"]
    assert first.counts["usage_reported"] == again.counts["usage_reported"] == 1
    assert [(r["attributes"]["subscription_item_id"], r["attributes"]["quantity"], r["attributes"]["action"])
            for r in lemonsqueezy_api.usage_records] == [(item, 6, "set")] * 2


# ----------------------------------------------------------------------------- reconcile, health


def test_payments_reconcile_agrees_with_mirrored_money_and_names_money_we_never_saw(client, lemonsqueezy_api,
                                                                                   capsys):
    lemonsqueezy_api.clock = timezone.now() - timedelta(hours=1)
    subscription, ls_id = mirrored_subscription(client, lemonsqueezy_api)
    since = (timezone.now() - timedelta(hours=2)).isoformat()
    call_command("payments", "reconcile", "--provider", "lemonsqueezy", "--since", since)
    assert "lemonsqueezy and our books agree" in capsys.readouterr().out
    lemonsqueezy_api.renew(ls_id)  # its webhook is lost
    with pytest.raises(CommandError):
        call_command("payments", "reconcile", "--provider", "lemonsqueezy", "--since", since,
                     "--until", (timezone.now() + timedelta(days=40)).isoformat())
    assert "missing_here payment subscription-invoice-" in capsys.readouterr().out


def test_healthz_has_a_lemonsqueezy_section(client, lemonsqueezy_api, settings):
    ok = client.get("/healthz?deep=1").json()["modules"]["lemonsqueezy"]
    settings.LEMONSQUEEZY_SIGNING_SECRET = ""
    response = client.get("/healthz")
    degraded = response.json()["modules"]["lemonsqueezy"]
    assert ok["status"] == "ok" and ok["details"]["configured"] is True
    assert response.status_code == 200 and degraded["status"] == "degraded"
    assert "LEMONSQUEEZY_SIGNING_SECRET is missing" in degraded["message"]


def test_deep_health_reads_the_store_once_and_reports_its_latency(client, lemonsqueezy_api):
    section = client.get("/healthz?deep=1").json()["modules"]["lemonsqueezy"]
    assert section["status"] == "ok" and section["details"]["api"]["status"] == "ok"
    assert section["details"]["api"]["latency_ms"] >= 0
    assert [(r["method"], r["path"].split("/")[1]) for r in lemonsqueezy_api.requests] == [("GET", "stores")]


def test_deep_health_reports_a_refused_key_down_and_a_failing_api_degraded_keeping_http_200(
        client, lemonsqueezy_api, settings):
    lemonsqueezy_api.fail_next("server_error")
    failing = client.get("/healthz?deep=1")
    settings.LEMONSQUEEZY_API_KEY = "not-the-key"
    refused = client.get("/healthz?deep=1")
    assert failing.status_code == refused.status_code == 200
    failing, refused = failing.json()["modules"]["lemonsqueezy"], refused.json()["modules"]["lemonsqueezy"]
    assert (failing["status"], failing["details"]["api"]["status"]) == ("degraded", "degraded")
    assert (refused["status"], refused["details"]["api"]["status"]) == ("down", "error")
    assert "LEMONSQUEEZY_API_KEY" in refused["message"]


def test_the_webhook_inbox_admin_lists_events_and_reprocesses_them(client, admin_client, lemonsqueezy_api):
    subscription, _ = mirrored_subscription(client, lemonsqueezy_api)
    from payments.providers.lemonsqueezy.models import LemonSqueezyEvent

    listing = admin_client.get("/admin/payments_lemonsqueezy/lemonsqueezyevent/")
    events = list(LemonSqueezyEvent.objects.values_list("pk", flat=True))
    done = admin_client.post("/admin/payments_lemonsqueezy/lemonsqueezyevent/",
                             {"action": "reprocess", "_selected_action": events}, follow=True)
    assert listing.status_code == 200 and b"subscription_created" in listing.content
    assert f"Reprocessed {len(events)} event(s)." in done.content.decode()
    assert Invoice.objects.filter(subscription=subscription, status=InvoiceStatus.PAID).count() == 1
