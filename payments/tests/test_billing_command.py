from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from core.command_args import parse_as_of
from credits.models import CreditBalance, CreditGrant
from payments.models import Invoice, InvoiceLine
from payments.tests.conftest import T0, make_due_subscription
from subscriptions.tests.factories import CustomerFactory
from usage.models import UsageEvent

FEB_28 = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def _call(*args) -> str:
    out = StringIO()
    call_command("billing", *args, stdout=out)
    return out.getvalue()


def test_run_prints_a_summary_of_counts(metered_plan):
    plan, _ = metered_plan
    make_due_subscription(plan=plan)
    output = _call("run", "--as-of", "2026-02-28T12:00:00Z", "--no-progress")
    assert "Billing run as of 2026-02-28T12:00:00+00:00" in output
    assert "renewed 1" in output and "invoiced 1" in output and "refilled 1" in output
    assert Invoice.objects.count() == 1


def test_run_summarises_in_arabic_for_an_arabic_operator_and_names_skipped_steps(metered_plan, monkeypatch):
    plan, _ = metered_plan
    make_due_subscription(plan=plan)
    monkeypatch.setenv("LANG", "ar_YE.UTF-8")
    call_command("modules", "disable", "dunning", stdout=StringIO())

    output = _call("run", "--as-of", "2026-02-28T12:00:00Z", "--no-progress").strip()

    assert output.startswith("دورة الفوترة بتاريخ 2026-02-28T12:00:00+00:00: ")
    assert "جُدِّد: 1" in output and "فُوتِر: 1" in output and "أُعيدت تعبئته: 1" in output
    assert output.endswith("تُخطّيت (وحدتها معطّلة): collection.")
    assert Invoice.objects.count() == 1


def test_dry_run_prints_the_same_and_writes_nothing(metered_plan):
    plan, _ = metered_plan
    make_due_subscription(plan=plan)
    output = _call("run", "--as-of", "2026-02-28T12:00:00", "--dry-run", "--no-progress")
    assert output.startswith("Dry run (nothing written)") and "renewed 1" in output
    assert not Invoice.objects.exists() and not CreditGrant.objects.exists()


@pytest.mark.parametrize("args, message", [
    (["run", "--as-of", "next tuesday"], "--as-of takes an ISO date"),
    (["run", "--as-of", "2026-02-30"], "--as-of takes an ISO date"),
    (["run", "--limit", "0"], "--limit must be between 1 and"),
    (["preview", "nobody@example.com"], "No customer with id, email or external id"),
])
def test_bad_input_exits_with_one_clear_line(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("billing", *args)


def test_as_of_accepts_dates_and_offsets_and_is_utc():
    assert parse_as_of("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_as_of("2026-03-01T02:00:00+02:00") == datetime(2026, 3, 1, tzinfo=UTC)


def test_preview_prints_the_upcoming_invoice_without_writing(metered_plan):
    plan, meter = metered_plan
    customer = CustomerFactory(user=None, email="grace@example.com", external_id="crm-42")
    make_due_subscription(plan=plan, customer=customer)
    UsageEvent.objects.create(customer=customer, meter=meter, quantity=Decimal(103), occurred_at=T0 + timedelta(1),
                              idempotency_key="u1")
    for reference in (str(customer.pk), "grace@example.com", "crm-42"):
        output = _call("preview", reference)
        assert f"(customer {customer.pk})" in output
        assert "2026-02-28 - 2026-03-31" in output and "20.00 USD" in output
        assert "API calls: 3 call beyond 100 included" in output and "0.02 USD" in output  # 1.5 rounds to 2
        assert "Total: 20.02 USD" in output
    assert not Invoice.objects.exists()


def test_preview_total_matches_what_the_run_then_invoices(metered_plan):
    from payments.billing.preview import invoice_preview
    from payments.billing.run import billing_run

    plan, meter = metered_plan
    sub = make_due_subscription(plan=plan)
    UsageEvent.objects.create(customer=sub.customer, meter=meter, quantity=Decimal("177.3"),
                              occurred_at=T0 + timedelta(2), idempotency_key="u1")
    preview = invoice_preview(customer=sub.customer)
    billing_run(as_of=FEB_28)
    invoice = Invoice.objects.get(subscription=sub)
    assert preview.total == invoice.total and preview.issue_at == FEB_28
    assert [line.amount for line in preview.lines] == list(invoice.lines.order_by("id").values_list("amount",
                                                                                                    flat=True))


def test_verify_passes_after_a_run_and_names_each_tampered_figure(metered_plan):
    plan, _ = metered_plan
    sub = make_due_subscription(plan=plan)
    _call("run", "--as-of", "2026-02-28T12:00:00Z", "--no-progress")
    assert "Verified" in _call("verify")

    invoice = Invoice.objects.get(subscription=sub)
    Invoice.objects.filter(pk=invoice.pk).update(total=1, amount_due=1)
    InvoiceLine.objects.filter(invoice=invoice).update(amount=7)
    CreditBalance.objects.filter(customer=sub.customer).update(balance=999)
    out = StringIO()
    with pytest.raises(CommandError, match="mismatch"):
        call_command("billing", "verify", stdout=out)
    report = out.getvalue()
    assert f"invoice_total: invoice_id={invoice.pk}" in report
    assert f"invoice_line_amount: invoice_id={invoice.pk}" in report
    assert f"credit_balance: customer_id={sub.customer_id} stored=999" in report


def test_preview_follows_scheduled_downgrades_cancellations_and_trials(settings):
    from payments.billing.preview import invoice_preview
    from subscriptions.models import SubscriptionStatus
    from subscriptions.tests.factories import PlanFactory

    small = PlanFactory(amount=1000, name="Small")
    downgrading = make_due_subscription(plan=PlanFactory(amount=5000), scheduled_plan=small)
    assert [line.amount for line in invoice_preview(customer=downgrading.customer).lines] == [1000]

    ending = make_due_subscription(plan=small, cancel_at_period_end=True)
    preview = invoice_preview(customer=ending.customer)
    assert preview.lines == [] and preview.note == "the subscription ends at period end"

    settings.BILLING_REQUIRE_PAYMENT_METHOD_FOR_TRIAL_CONVERSION = False
    trial = make_due_subscription(plan=small, status=SubscriptionStatus.TRIALING)
    assert invoice_preview(customer=trial.customer).total == 1000

    paused = make_due_subscription(plan=small, status=SubscriptionStatus.PAUSED)
    assert invoice_preview(customer=paused.customer).note == "subscription is paused: nothing renews"
