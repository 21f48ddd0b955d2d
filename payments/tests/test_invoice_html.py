from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from billing_project.tests.admin_helpers import staff_user
from payments.billing.run import billing_run
from payments.invoice_html import invoice_render_html
from payments.models import Invoice
from payments.services import OneOffLine, invoice_one_off_create
from payments.tests.conftest import make_due_subscription
from subscriptions.tests.factories import CustomerFactory, PlanFactory, StaffUserFactory, UserFactory

FEB_28 = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoice():
    customer = CustomerFactory(name="Ada Lovelace", email="ada@example.com")
    make_due_subscription(customer=customer, plan=PlanFactory(name="Pro", amount=123456))
    billing_run(as_of=FEB_28)
    return Invoice.objects.get(customer=customer)


def test_rendered_invoice_shows_number_customer_lines_and_formatted_totals(invoice):
    html = invoice_render_html(invoice=invoice)
    assert invoice.number in html and "Ada Lovelace" in html and "ada@example.com" in html
    assert "Pro (2026-02-28 - 2026-03-31)" in html
    assert html.count("1,234.56 USD") >= 3  # line, subtotal, total, amount due
    assert "Amount due" in html


def test_owner_and_staff_can_open_the_print_page(client, invoice):
    url = reverse("invoice-print", kwargs={"pk": invoice.pk})
    assert url == f"/invoices/{invoice.pk}/print/"
    client.force_login(invoice.customer.user)
    response = client.get(url)
    assert response.status_code == 200 and invoice.number in response.content.decode()
    client.force_login(StaffUserFactory())
    assert client.get(url).status_code == 200


def test_staff_need_the_view_invoice_permission(client, invoice):
    url = reverse("invoice-print", kwargs={"pk": invoice.pk})
    client.force_login(staff_user(username="no-perms"))
    assert client.get(url).status_code == 403
    # Refused before the lookup: a missing id is no different.
    assert client.get(reverse("invoice-print", kwargs={"pk": invoice.pk + 999})).status_code == 403
    client.force_login(staff_user("payments.view_invoice", username="viewer"))
    assert client.get(url).status_code == 200


def test_anyone_else_gets_404(client, invoice):
    url = reverse("invoice-print", kwargs={"pk": invoice.pk})
    assert client.get(url).status_code == 404
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    assert client.get(reverse("invoice-print", kwargs={"pk": invoice.pk + 999})).status_code == 404
    client.force_login(invoice.customer.user)
    assert client.post(url).status_code == 405


def test_a_one_off_invoice_prints_its_note_to_the_customer_escaped():
    customer = CustomerFactory()
    invoice = invoice_one_off_create(customer=customer, currency=customer.currency,
                                     note="Thank you!\nBank: <IBAN on file>",
                                     lines=[OneOffLine(description="Setup fee", quantity=Decimal(1), unit_amount=2500)])
    html = invoice_render_html(invoice=invoice)
    assert '<section class="note">Thank you!\nBank: &lt;IBAN on file&gt;</section>' in html
    assert "Setup fee" in html and "25.00 USD" in html
