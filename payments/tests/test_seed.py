from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from credits.models import CreditGrant, CreditLedgerEntry
from credits.selectors import credit_balance_mismatches
from payments.models import BillingReason, Invoice, Payment, PaymentStatusChange, ProviderAccount
from payments.seeding.data import ARABIC_DEMO_CUSTOMERS
from payments.selectors import invoice_total_mismatches
from payments.services.money_rollup_rebuild import money_rollup_mismatches
from subscriptions.models import (
    Customer,
    Plan,
    Subscription,
    SubscriptionEvent,
    SubscriptionEventKind,
    SubscriptionStatus,
)
from subscriptions.tests.factories import UserFactory
from usage.models import Meter, MeterPrice, UsageEvent

pytestmark = pytest.mark.django_db

AS_OF = "2025-06-15T12:00:00Z"
# The Arabic-speaking demo customers every --demo adds (test_seed_arabic.py covers them).
ARABIC_KEYS = [c.key for c in ARABIC_DEMO_CUSTOMERS]
AS_OF_DT = datetime(2025, 6, 15, 12, tzinfo=UTC)
LOGIN = "Staff login: http://127.0.0.1:8000/admin/  user: staff  password: billing-demo"


@pytest.fixture(autouse=True)
def _local_run(settings):
    # The README's run command is a DEBUG run; pytest-django turns DEBUG off, which means production here.
    settings.DEBUG = True


def seed(*args, **options) -> str:
    out = StringIO()
    call_command("seed", *args, stdout=out, **options)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    return {model._meta.label: model.objects.count() for model in apps.get_models() if model._meta.managed}


def test_seed_creates_the_four_plans_exactly():
    seed()

    plans = {p.code: p for p in Plan.objects.all()}
    monthly = {code: (p.amount, p.currency, p.interval, p.credits_per_period, p.rate_limit_per_minute,
                      p.rate_limit_per_hour)
               for code, p in plans.items() if p.interval == "month"}
    assert monthly == {
        "free": (0, "USD", "month", 10, 5, 50),
        "basic": (999, "USD", "month", 100, 20, 500),
        "pro": (2999, "USD", "month", 1000, 50, 2000),
        "enterprise": (9999, "USD", "month", 10000, 100, 10000),
    }
    assert [p.code for p in Plan.objects.all()] == [
        "free", "basic", "basic-yearly", "pro", "pro-yearly", "enterprise", "enterprise-yearly"]
    for code in ("basic", "pro", "enterprise"):
        yearly = plans[f"{code}-yearly"]
        assert (yearly.interval, yearly.amount, yearly.credits_per_period) == (
            "year", plans[code].amount * 10, plans[code].credits_per_period * 12)
        assert (yearly.rate_limit_per_minute, yearly.features) == (plans[code].rate_limit_per_minute,
                                                                  plans[code].features)
        assert plans[code].trial_days == yearly.trial_days == 14
    assert plans["free"].trial_days == 0
    # Each tier has everything the one below has, every tier may call the API, paid tiers get live updates.
    tiers = [set(plans[code].features) for code in ("free", "basic", "pro", "enterprise")]
    assert all(lower <= higher for lower, higher in zip(tiers, tiers[1:], strict=False))
    assert all("api_access" in features for features in tiers)
    assert "live_updates" not in tiers[0] and all("live_updates" in features for features in tiers[1:])
    calls_per_day = [plans[code].api_calls_per_day for code in ("free", "basic", "pro", "enterprise")]
    assert calls_per_day == sorted(calls_per_day) and calls_per_day[0] > 0


def test_seed_creates_the_meters_and_their_prices():
    seed()

    meters = {m.code: m for m in Meter.objects.all()}
    assert {code: m.aggregation for code, m in meters.items()} == {
        "api_calls": "sum", "storage_gb": "max", "active_users": "unique_count", "report_generations": "sum"}
    assert meters["active_users"].unique_property == "user_id"
    assert meters["report_generations"].credits_per_unit == Decimal(1)
    assert meters["api_calls"].credits_per_unit is None
    assert not MeterPrice.objects.filter(plan__code="free").exists()
    basic_calls = MeterPrice.objects.get(plan__code="basic", meter__code="api_calls")
    yearly_calls = MeterPrice.objects.get(plan__code="basic-yearly", meter__code="api_calls")
    assert (basic_calls.unit_amount, basic_calls.included_units) == (Decimal("0.05"), Decimal(10_000))
    assert yearly_calls.included_units == Decimal(120_000)
    assert MeterPrice.objects.count() == 6 * 3


def test_seed_prints_a_staff_login_for_a_staff_superuser():
    out = seed()

    assert LOGIN in out
    staff = get_user_model().objects.get(username="staff")
    assert staff.is_staff and staff.is_superuser and staff.check_password("billing-demo")


def test_seed_takes_the_staff_account_from_the_environment(monkeypatch):
    monkeypatch.setenv("SEED_STAFF_USERNAME", "finance")
    monkeypatch.setenv("SEED_STAFF_PASSWORD", "a-longer-secret")

    out = seed()

    assert "Staff login: http://127.0.0.1:8000/admin/  user: finance  password: a-longer-secret" in out
    assert not get_user_model().objects.filter(username="staff").exists()


def test_seed_never_resets_or_prints_a_changed_password():
    seed()
    staff = get_user_model().objects.get(username="staff")
    staff.set_password("changed-by-ops")
    staff.save()

    out = seed()

    assert "billing-demo" not in out
    assert "user: staff  (password not shown: it is not SEED_STAFF_PASSWORD or its default)" in out
    staff.refresh_from_db()
    assert staff.check_password("changed-by-ops")


def test_without_debug_there_is_no_default_staff_password(settings, monkeypatch):
    settings.DEBUG = False
    monkeypatch.delenv("SEED_STAFF_PASSWORD", raising=False)

    with pytest.raises(CommandError, match="set SEED_STAFF_PASSWORD"):
        seed()
    assert not get_user_model().objects.exists()

    monkeypatch.setenv("SEED_STAFF_PASSWORD", "a-production-secret")
    assert "password: a-production-secret" in seed()
    monkeypatch.delenv("SEED_STAFF_PASSWORD")
    assert "user: staff  (password not shown" in seed()


def test_the_catalog_follows_the_default_currency(settings):
    settings.DEFAULT_CURRENCY = "JPY"

    seed()

    # Prices are written in major units: 9.99 is 10 yen (JPY has no minor unit), 99.99 is 100.
    assert dict(Plan.objects.filter(interval="month").values_list("code", "amount")) == {
        "free": 0, "basic": 10, "pro": 30, "enterprise": 100}
    assert set(Plan.objects.values_list("currency", flat=True)) == {"JPY"}


def test_seed_refuses_to_promote_an_ordinary_user_named_like_the_staff_account():
    UserFactory(username="staff")

    with pytest.raises(CommandError, match="not an active staff superuser"):
        seed()

    staff = get_user_model().objects.get(username="staff")
    assert not staff.is_staff and not staff.is_superuser
    assert not Plan.objects.exists()


@pytest.mark.parametrize(("options", "message"), [
    ({"demo": "-3"}, "--demo must be between 0 and 1000, not -3."),
    ({"demo": "1001"}, "--demo must be between 0 and 1000"),
    ({"demo": "abc"}, "--demo takes a whole number, not 'abc'."),
    ({"demo": "2", "as_of": "last tuesday"}, "--as-of takes an ISO date"),
    ({"demo": "2", "as_of": "2999-01-01"}, "--as-of cannot be in the future"),
])
def test_bad_input_fails_with_one_clear_line_and_creates_nothing(options, message):
    with pytest.raises(CommandError) as failed:
        seed(**options)

    assert message in str(failed.value)
    assert "\n" not in str(failed.value)
    assert not Plan.objects.exists()
    assert not get_user_model().objects.exists()


def test_seed_twice_changes_nothing():
    seed(demo=6, as_of=AS_OF)
    first = row_counts()

    out = seed(demo=6, as_of=AS_OF)

    assert row_counts() == first
    assert "Nothing to create: everything was already there." in out
    assert "Demo customers: 0 created, 6 already there." in out
    assert LOGIN in out


def test_the_summary_is_written_in_arabic_for_an_arabic_operator(monkeypatch):
    monkeypatch.setenv("LANG", "ar_YE.UTF-8")

    lines = seed(demo=1, as_of=AS_OF).splitlines()

    created = dict(part.split(": ") for part in lines[0].removeprefix("أُنشئ: ").removesuffix(".").split(", "))
    assert created["الخطط"] == str(Plan.objects.count()) and created["العدّادات"] == str(Meter.objects.count())
    assert lines[1] == "عملاء العرض التجريبي: أُنشئ 1، وكان 0 موجودًا بالفعل."
    assert any(line.startswith("الاشتراكات حسب الحالة: active ") for line in lines)
    assert "دخول الموظفين: http://127.0.0.1:8000/admin/  المستخدم: staff  كلمة المرور: billing-demo" in lines


def test_more_demo_customers_later_adds_only_the_missing_ones():
    seed(demo=2, as_of=AS_OF)
    first_two = list(Subscription.objects.order_by("customer_id").values_list("customer__external_id", "status"))[:2]

    out = seed(demo=3, as_of=AS_OF)

    assert "Demo customers: 1 created, 2 already there." in out
    assert Customer.objects.exclude(external_id__in=ARABIC_KEYS).count() == 3
    assert list(Subscription.objects.order_by("customer_id").values_list("customer__external_id", "status"))[:2] == \
        first_two


def test_demo_data_looks_like_a_real_business():
    out = seed(demo=6, as_of=AS_OF)

    assert "Demo customers: 6 created" in out
    customers = Customer.objects.select_related("user").exclude(external_id__in=ARABIC_KEYS).order_by("id")
    assert [c.external_id for c in customers] == [f"demo-customer-{n:03d}" for n in range(1, 7)]
    assert all(c.user and c.user.username == c.external_id and not c.user.has_usable_password() for c in customers)
    assert set(Subscription.objects.values_list("status", flat=True)) == set(SubscriptionStatus.values)
    assert {"open", "paid", "void", "uncollectible"} <= set(Invoice.objects.values_list("status", flat=True))
    assert {"succeeded", "failed", "refunded", "partially_refunded"} <= set(
        Payment.objects.values_list("status", flat=True))
    assert {"stripe", "cash", "check", "bank_transfer"} <= set(Payment.objects.values_list("method", flat=True))
    stripe = Payment.objects.filter(method="stripe")
    assert all(p.provider == "stripe" and p.provider_payment_id.startswith("pi_") for p in stripe)
    assert set(CreditGrant.objects.values_list("source", flat=True)) == {"plan_refill", "purchase", "promotion",
                                                                         "adjustment"}
    assert {"grant", "debit", "expiry", "refund"} <= set(CreditLedgerEntry.objects.values_list("kind", flat=True))
    # History, not a snapshot: months of usage, nothing after the as-of instant, invoices issued in the past.
    occurred = UsageEvent.objects.values_list("occurred_at", flat=True)
    assert min(occurred) < AS_OF_DT - timedelta(days=80)
    assert max(occurred) < AS_OF_DT
    assert {"api_calls", "storage_gb", "active_users", "report_generations"} == set(
        UsageEvent.objects.values_list("meter__code", flat=True))
    assert max(Invoice.objects.values_list("issued_at", flat=True)) <= AS_OF_DT
    # Built through the services, so the ledgers and totals verify.
    assert credit_balance_mismatches() == []
    assert invoice_total_mismatches() == []
    # Every rail's payments, refunds, voids and renewals kept the money rollups true as they went.
    assert money_rollup_mismatches() == []


def test_demo_renewals_and_card_payments_come_from_the_real_services():
    seed(demo=6, as_of=AS_OF)

    renewals = SubscriptionEvent.objects.filter(kind=SubscriptionEventKind.RENEWED)
    assert renewals.exists()
    # The billing engine wrote them (its own actor and the invoice it issued for the period).
    assert set(renewals.values_list("actor_label", flat=True)) == {"system:billing-run"}
    assert all(event.data.get("invoice_id") or event.subscription.plan.is_free for event in renewals)
    cycle = Invoice.objects.filter(billing_reason=BillingReason.SUBSCRIPTION_CYCLE)
    assert cycle.count() == renewals.exclude(data__invoice_id=None).count()
    # Card payments moved through the rail's charge_apply: processing first, then what the charge said.
    card = Payment.objects.filter(method="stripe").first()
    moves = list(PaymentStatusChange.objects.filter(payment=card).order_by("id").values_list("to_status", flat=True))
    assert moves[0] == "processing" and moves[1] in {"succeeded", "failed"}
    # Customers 1, 2 and 6 pay by card (a saved one, as Checkout leaves it); 3 pays by bank transfer.
    saved = dict(ProviderAccount.objects.filter(provider="stripe").values_list(
        "customer__external_id", "default_payment_method_id"))
    assert [saved.get(f"demo-customer-{n:03d}", "") for n in (1, 2, 3, 6)] == [
        "pm_demo001", "pm_demo002", "", "pm_demo006"]


def test_with_no_card_rail_installed_the_demo_pays_by_hand_and_still_verifies(settings):
    settings.PAYMENT_PROVIDERS = ["payments.providers.manual.ManualProvider"]

    seed(demo=6, as_of=AS_OF)

    assert set(Payment.objects.values_list("provider", flat=True)) == {"manual"}
    assert not ProviderAccount.objects.exists()
    assert invoice_total_mismatches() == []


def test_demo_customers_get_an_api_token_and_a_curl_example():
    out = seed(demo=3, as_of=AS_OF)

    tokens = Token.objects.filter(user__username__startswith="demo-customer-").exclude(user__username__in=ARABIC_KEYS)
    assert tokens.count() == 3
    first = Token.objects.get(user__username="demo-customer-001").key
    lines = out.splitlines()
    assert lines[lines.index(LOGIN) + 1] == (
        f"Demo API call: curl -H 'Authorization: Token {first}' http://127.0.0.1:8000/api/v1/entitlements/")
    # A second run prints the same token again and creates none.
    assert f"Token {first}'" in seed(demo=3, as_of=AS_OF)
    assert Token.objects.exclude(user__username__in=ARABIC_KEYS).count() == 3
