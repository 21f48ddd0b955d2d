"""The invoice add page (a one-off invoice with inline lines and a note), the Finalize action, and the
payment page showing what a payment paid for and the credits it awarded."""

import pytest
from django.contrib.admin.models import LogEntry

from billing_project.tests.admin_helpers import (
    ACTOR,
    action_names,
    change_url,
    changelist_url,
    messages_of,
    post_action,
    staff_user,
)
from payments.models import BillingReason, Invoice, InvoiceLineKind, InvoiceStatus
from payments.providers.manual.services import payment_record_manual
from payments.services import subscription_start
from subscriptions.tests.factories import CustomerFactory, PlanFactory

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/payments/invoice/add/"


def _add_form(customer, lines: list[tuple[str, str, str]], note: str = "Thanks for the workshop.") -> dict:
    data = {"customer": customer.pk, "note": note, "lines-TOTAL_FORMS": str(len(lines)),
            "lines-INITIAL_FORMS": "0", "lines-MIN_NUM_FORMS": "1", "lines-MAX_NUM_FORMS": "1000"}
    for n, (description, quantity, unit_price) in enumerate(lines):
        data.update({f"lines-{n}-description": description, f"lines-{n}-quantity": quantity,
                     f"lines-{n}-unit_price": unit_price})
    return data


def test_staff_add_a_one_off_invoice_with_its_lines_as_a_draft(admin_client):
    customer = CustomerFactory()
    page = admin_client.get(ADD_URL)
    assert page.status_code == 200 and "lines-TOTAL_FORMS" in page.content.decode()

    response = admin_client.post(ADD_URL, _add_form(customer, [("Setup fee", "1", "250.00"),
                                                               ("Consulting (hours)", "2.5", "120.01")]))

    invoice = Invoice.objects.get()
    assert response.status_code == 302
    assert (invoice.status, invoice.billing_reason, invoice.currency, invoice.note) == (
        InvoiceStatus.DRAFT, BillingReason.MANUAL, customer.currency, "Thanks for the workshop.")
    # 2.5 x 12001 minor units = 30002.5, rounded half-up once.
    assert [(line.kind, line.description, line.amount) for line in invoice.lines.order_by("id")] == [
        (InvoiceLineKind.ADJUSTMENT, "Setup fee", 25000), (InvoiceLineKind.ADJUSTMENT, "Consulting (hours)", 30003)]
    assert invoice.total == 55003
    assert LogEntry.objects.get().object_id == str(invoice.pk)
    assert "Thanks for the workshop." in admin_client.get(change_url(invoice)).content.decode()


@pytest.mark.parametrize(("lines", "message"), [
    ([("Setup fee", "0", "10.00")], "The quantity must be positive."),
    ([("Setup fee", "1", "10.001")], "has more decimals than USD allows"),
    ([("Setup fee", "1", "0")], "nothing to bill"),
    ([("", "1", "10.00")], "This field is required"),
    ([("Big", "99999999999999", "99999999999999999.00")], "too large to store"),
    ([], "An invoice needs 1 to 100 lines."),
])
def test_a_bad_add_form_is_shown_again_and_creates_nothing(admin_client, lines, message):
    response = admin_client.post(ADD_URL, _add_form(CustomerFactory(), lines))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Invoice.objects.exists()


def test_adding_needs_the_add_invoice_permission(client):
    customer = CustomerFactory()
    client.force_login(staff_user("payments.view_invoice", username="viewer"))
    assert client.get(ADD_URL).status_code == 403
    assert client.post(ADD_URL, _add_form(customer, [("Setup fee", "1", "10.00")])).status_code == 403
    client.force_login(staff_user("payments.view_invoice", "payments.add_invoice", username="drafter"))
    assert client.post(ADD_URL, _add_form(customer, [("Setup fee", "1", "10.00")])).status_code == 302
    assert Invoice.objects.get().total == 1000


def test_finalize_issues_drafts_and_needs_its_permission(admin_client, client):
    admin_client.post(ADD_URL, _add_form(CustomerFactory(), [("Setup fee", "1", "10.00")]))
    draft = Invoice.objects.get()
    client.force_login(staff_user("payments.view_invoice", "payments.change_invoice", username="clerk"))
    assert "finalize" not in action_names(client.get(changelist_url(Invoice)))

    response = post_action(admin_client, Invoice, "finalize", [draft])

    draft.refresh_from_db()
    assert (draft.status, draft.number is not None) == (InvoiceStatus.OPEN, True)
    assert "Finalized 1 invoice(s)." in messages_of(response)
    again = post_action(admin_client, Invoice, "finalize", [draft])
    assert messages_of(again) == [f"{draft.number}: A open invoice cannot be finalized; only drafts are."]


def test_the_payment_page_shows_what_it_paid_for_and_the_credits_it_awarded(admin_client):
    plan = PlanFactory(amount=999, trial_days=0, credits_per_period=250)
    subscription, invoice = subscription_start(customer=CustomerFactory(), plan=plan, actor=ACTOR)
    payment = payment_record_manual(customer=subscription.customer, invoice=invoice, amount=999, method="cash",
                                    description="paid at the front desk", actor=ACTOR)

    page = admin_client.get(change_url(payment)).content.decode()

    assert f'href="{change_url(invoice)}"' in page
    assert plan.name in page and "paid at the front desk" in page
    assert "Grant +250 credits" in page and "balance after 250" in page


def test_a_payment_on_account_says_it_paid_for_nothing_billed(admin_client):
    payment = payment_record_manual(customer=CustomerFactory(), amount=500, method="check", actor=ACTOR)
    page = admin_client.get(change_url(payment)).content.decode()
    assert "Nothing billed: money received on account." in page
