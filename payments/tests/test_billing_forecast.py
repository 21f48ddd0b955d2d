"""The forecast (`billing preview --all --days N`, /api/v1/reports/forecast/) is what the billing run then
issues: random subscriptions are forecast, then billed by the run at the horizon, and the two compared."""

import json
import random
import re
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments.billing.forecast import billing_forecast, forecast_by_day
from payments.billing.run import billing_run
from payments.models import Invoice
from payments.tests.conftest import T0, make_due_subscription
from subscriptions.models import BillingInterval, SubscriptionStatus
from subscriptions.tests.factories import CustomerFactory, PlanFactory
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db
NOW = T0 + timedelta(days=10)
DAYS = 75


def _random_book(seed: int, metered_plan) -> None:
    rng = random.Random(seed)
    metered, meter = metered_plan
    plans = [metered, PlanFactory(amount=1500), PlanFactory(amount=500), PlanFactory(amount=0),
             PlanFactory(amount=12000, interval=BillingInterval.YEAR),
             PlanFactory(amount=2700, interval=BillingInterval.MONTH, interval_count=3)]
    for n in range(30):
        plan = rng.choice(plans)
        status = rng.choices([SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE, SubscriptionStatus.TRIALING,
                              SubscriptionStatus.PAUSED, SubscriptionStatus.INCOMPLETE], weights=[6, 1, 2, 1, 1])[0]
        fields = {}
        if rng.random() < 0.2:
            fields["cancel_at_period_end"] = True
        elif rng.random() < 0.2:
            fields["scheduled_plan"] = rng.choice(plans)
        anchor = T0 - timedelta(days=rng.randrange(0, 100), hours=rng.randrange(24))
        sub = make_due_subscription(plan=plan, customer=CustomerFactory(user=None), anchor=anchor, status=status,
                                    **fields)
        if plan == metered or plan.amount == 0:
            for k in range(rng.randrange(0, 4)):
                UsageEvent.objects.create(customer=sub.customer, meter=meter, quantity=Decimal(rng.randrange(1, 300)),
                                          occurred_at=max(sub.current_period_start, NOW - timedelta(days=k + 1)),
                                          idempotency_key=f"f-{n}-{k}")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_forecast_is_what_the_billing_run_then_issues(settings, metered_plan, seed):
    settings.BILLING_REQUIRE_PAYMENT_METHOD_FOR_TRIAL_CONVERSION = seed != 2  # both trial outcomes
    _random_book(seed, metered_plan)
    with CaptureQueriesContext(connection) as queries:
        forecast = billing_forecast(now=NOW, days=DAYS)
    assert not [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    before = set(Invoice.objects.values_list("pk", flat=True))
    billing_run(as_of=NOW + timedelta(days=DAYS) - timedelta(microseconds=1))
    issued = Invoice.objects.exclude(pk__in=before)
    assert forecast and Counter((i.subscription_id, i.billing_reason, i.total) for i in forecast) == Counter(
        issued.values_list("subscription_id", "billing_reason", "total"))
    assert all(NOW <= i.issue_at < NOW + timedelta(days=DAYS) for i in forecast)


def test_days_and_currencies_add_up(metered_plan):
    _random_book(7, metered_plan)
    forecast = billing_forecast(now=NOW, days=DAYS)
    days = forecast_by_day(invoices=forecast)
    assert sum(d.invoices for d in days) == len(forecast)
    assert sum(d.total for d in days) == sum(i.total for i in forecast)
    assert billing_forecast(now=NOW, days=DAYS, currency="EUR") == []


def _preview(*args) -> str:
    out = StringIO()
    call_command("billing", "preview", "--all", "--as-of", NOW.isoformat(), *args, stdout=out)
    return out.getvalue()


def test_the_command_prints_the_forecast_per_day_and_compares_with_an_earlier_one(metered_plan, tmp_path):
    plan, _ = metered_plan
    make_due_subscription(plan=plan)
    earlier = tmp_path / "forecast.json"
    earlier.write_text(_preview("--days", "50", "--json"))
    document = json.loads(earlier.read_text())
    assert [(d["day"], d["invoices"], d["total"]) for d in document["by_day"]] == [("2026-02-28", 1, 2000),
                                                                                   ("2026-03-31", 1, 2000)]
    text = _preview("--days", "50")
    assert "2026-02-28  USD        1 invoice " in text and "Total USD: 2 invoices, 40.00 USD" in text
    make_due_subscription(plan=PlanFactory(amount=700))
    diff = _preview("--days", "50", "--diff", str(earlier))
    assert "2026-02-28 USD: 1 -> 2 invoices, 20.00 USD -> 27.00 USD" in diff
    assert diff.strip().endswith("2 added, 0 removed, 0 changed.")


def test_the_forecast_and_its_diff_are_written_in_arabic_for_an_arabic_operator(metered_plan, tmp_path, monkeypatch):
    plan, _ = metered_plan
    make_due_subscription(plan=plan)
    earlier = tmp_path / "forecast.json"
    earlier.write_text(_preview("--days", "50", "--json"))
    monkeypatch.setenv("LANGUAGE", "ar")

    text = _preview("--days", "50")
    make_due_subscription(plan=PlanFactory(amount=700))
    diff = _preview("--days", "50", "--diff", str(earlier))

    lines = text.splitlines()
    assert lines[0] == f"الفواتير التي ستصدرها دورة الفوترة ابتداءً من {NOW.isoformat()} خلال ٥٠ يومًا:"
    assert lines[1].split() == ["2026-02-28", "USD", "١", "فاتورة", "٢٠٫٠٠", "USD"]
    assert lines[-1] == "إجمالي USD: فاتورتان، ٤٠٫٠٠ USD"
    assert "  2026-02-28 USD: من ١ إلى ٢ فاتورة، من ٢٠٫٠٠ USD إلى ٢٧٫٠٠ USD" in diff.splitlines()
    assert diff.strip().endswith("أُضيف ٢، وأُزيل ٠، وتغيّر ٠.")
    assert not re.search("[a-z]", text + diff)  # no English word left: codes, ISO dates and numbers only
    # The document --diff reads keeps machine figures whatever the operator's language.
    assert json.loads(_preview("--days", "50", "--json"))["by_day"][0] == {
        "day": "2026-02-28", "currency": "USD", "invoices": 2, "total": 2700}


@pytest.mark.parametrize(("args", "message"), [
    (("preview",), "Give a customer, or --all for every customer (not both)."),
    (("preview", "--all", "--days", "0"), "--days must be between 1 and 366, not 0."),
    (("preview", "--all", "--currency", "usd"), "--currency takes an ISO 4217 code such as USD, not 'usd'."),
    (("preview", "--all", "--diff", "/nonexistent/forecast.json"), "cannot read it"),
])
def test_bad_arguments_end_with_one_line(args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        call_command("billing", *args)


def test_a_diff_file_that_is_not_a_forecast_is_refused(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": 1, "by_day": [{"day": 1}], "invoices": []}))
    with pytest.raises(CommandError, match="not a forecast written by"):
        call_command("billing", "preview", "--all", "--diff", str(bad))
