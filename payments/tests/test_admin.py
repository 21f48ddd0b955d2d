"""The invoices and payments back office: pages, search, the actions that call the payment services,
their permissions, and the read-only audit trails."""

import re
from decimal import Decimal

import pytest

from billing_project.tests.admin_helpers import (
    ACTOR,
    action_names,
    build_business,
    change_form_data,
    change_url,
    changelist_after_growth,
    changelist_and_change_page,
    changelist_url,
    messages_of,
    post_action,
    staff_user,
    view_permissions,
)
from core.exceptions import PaymentProviderError
from payments.models import (
    CreditPackOrder,
    Invoice,
    InvoiceLine,
    InvoiceNumberSequence,
    InvoiceStatus,
    InvoiceStatusChange,
    Payment,
    PaymentCreditEntry,
    PaymentStatus,
    PaymentStatusChange,
    ProviderAccount,
    ProviderEventStatus,
    ProviderPlanPrice,
    Refund,
    RefundStatusChange,
)
from payments.providers.manual.services import payment_record_manual
from payments.providers.stripe import gateway as stripe_gateway
from payments.providers.stripe.models import StripeEvent
from payments.services import invoice_mark_paid, payment_refund
from payments.tests.factories import PaymentFactory, StripeCustomerFactory
from payments.tests.stripe_support import new_id, setup_intent_object, stripe_account_id, stripe_event
from subscriptions.tests.factories import PlanFactory, StaffUserFactory, UserFactory

pytestmark = pytest.mark.django_db

PAYMENT_MODELS = [Invoice, InvoiceLine, InvoiceStatusChange, InvoiceNumberSequence, Payment, PaymentCreditEntry,
                  Refund, PaymentStatusChange, StripeEvent, CreditPackOrder]
READ_ONLY_MODELS = [InvoiceStatusChange, PaymentStatusChange, StripeEvent, InvoiceLine, InvoiceNumberSequence, Refund,
                    CreditPackOrder, PaymentCreditEntry]


@pytest.fixture
def business():
    return build_business(4)


def open_invoice(business) -> Invoice:
    """An open invoice of the business with nothing paid on it yet."""
    return Invoice.objects.filter(pk__in=[i.pk for i in business.invoices], status=InvoiceStatus.OPEN,
                                  amount_paid=0).order_by("pk").first()


@pytest.mark.parametrize("model", PAYMENT_MODELS, ids=lambda m: m.__name__)
def test_every_changelist_and_change_page_renders_with_data(admin_client, business, model):
    changelist, change = changelist_and_change_page(admin_client, model)

    assert changelist.status_code == 200
    assert change.status_code == 200


@pytest.mark.parametrize("model", PAYMENT_MODELS, ids=lambda m: m.__name__)
def test_changelist_query_count_does_not_grow_with_rows(admin_client, django_assert_max_num_queries, model):
    response = changelist_after_growth(admin_client, django_assert_max_num_queries, model)

    assert response.status_code == 200


def test_invoice_search_finds_by_number_and_customer_email(admin_client, business):
    wanted = business.invoices[1]

    by_number = admin_client.get(changelist_url(Invoice), {"q": wanted.number})
    by_email = admin_client.get(changelist_url(Invoice), {"q": "acme3@example.com"})

    assert list(by_number.context["cl"].result_list) == [wanted]
    assert [i.customer.email for i in by_email.context["cl"].result_list] == ["acme3@example.com"]


def test_payment_search_finds_by_reference(admin_client, business):
    response = admin_client.get(changelist_url(Payment), {"q": "REF-acme-2"})

    assert [p.reference for p in response.context["cl"].result_list] == ["REF-acme-2"]


def test_invoice_money_is_formatted_and_print_link_points_at_print_view(admin_client, business):
    invoice = open_invoice(business)

    listing = admin_client.get(changelist_url(Invoice)).content.decode()
    page = admin_client.get(change_url(invoice)).content.decode()

    assert "29.99 USD" in listing
    assert f'href="/invoices/{invoice.pk}/print/"' in listing
    assert page.count(f'href="/invoices/{invoice.pk}/print/"') == 2  # the object tools and the field
    assert "29.99 USD" in page


def test_invoice_page_shows_its_lines_payments_and_status_changes(admin_client, business):
    invoice = business.payments[0].invoice

    page = admin_client.get(change_url(invoice)).content.decode()

    assert invoice.lines.get().description in page
    assert "REF-acme-0" in page
    assert f'data-payment-id="{business.payments[0].pk}"' in page
    assert "paid in full" in page


def test_payment_status_badge_markup_in_list_and_change_page(admin_client, business):
    payment = business.payments[0]
    badge = (f'<span class="payment-status-badge status-partially_refunded" data-payment-id="{payment.pk}">'
             f'Partially refunded</span>')

    listing = admin_client.get(changelist_url(Payment)).content.decode()
    page = admin_client.get(change_url(payment)).content.decode()

    assert badge in listing
    assert badge in page
    assert ".payment-status-badge.status-succeeded" in page  # the badge colours ship with every page


def test_payment_page_shows_status_changes_and_refunds(admin_client, business):
    payment = business.payments[0]

    page = admin_client.get(change_url(payment)).content.decode()

    assert "goodwill" in page  # the refund's reason, in both inlines
    assert "1.00 USD" in page  # the refund amount
    assert "bank_transfer received" in page


def test_record_manual_payment_form_defaults_to_amount_due(admin_client, business):
    invoice = open_invoice(business)

    response = post_action(admin_client, Invoice, "record_manual_payment", [invoice])

    assert response.status_code == 200
    assert response.context["form"].initial["amount"] == Decimal("29.99")
    assert Payment.objects.filter(invoice=invoice).count() == 0


def test_record_manual_payment_pays_invoice_through_service(admin_client, business):
    invoice = open_invoice(business)

    response = post_action(admin_client, Invoice, "record_manual_payment", [invoice], apply=True,
                           method="check", amount="", reference="CHK-1001",
                           token="6f0c5c4b-6d1c-4a35-9d0e-1b1f0b7f3c11")

    invoice.refresh_from_db()
    payment = invoice.payments.get()
    assert messages_of(response) == ["Recorded a payment on 1 invoice(s)."]
    assert (payment.amount, payment.method, payment.status, payment.reference) == (2999, "check", "succeeded",
                                                                                  "CHK-1001")
    assert (invoice.status, invoice.amount_due, invoice.amount_paid) == (InvoiceStatus.PAID, 0, 2999)
    change = payment.status_changes.get()
    assert (change.actor_label, change.to_status) == ("admin", PaymentStatus.SUCCEEDED)
    assert invoice.status_changes.filter(to_status=InvoiceStatus.PAID, actor_label="admin").exists()
    invoice.subscription.refresh_from_db()
    assert invoice.subscription.status == "active"


def test_record_partial_manual_payment_in_major_units(admin_client, business):
    invoice = open_invoice(business)

    post_action(admin_client, Invoice, "record_manual_payment", [invoice], apply=True, method="cash",
                amount="10.50", reference="", token="6f0c5c4b-6d1c-4a35-9d0e-1b1f0b7f3c12")

    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == (InvoiceStatus.OPEN, 1050, 1949)


def test_record_manual_payment_on_paid_invoice_reports_error_and_changes_nothing(admin_client, business):
    paid = business.payments[0].invoice
    payable = open_invoice(business)

    response = post_action(admin_client, Invoice, "record_manual_payment", [paid, payable], apply=True,
                           method="cash", amount="5", reference="", token="6f0c5c4b-6d1c-4a35-9d0e-1b1f0b7f3c13")

    assert response.status_code == 200
    assert messages_of(response) == [f"{paid}: A paid invoice takes no payment.",
                                     "Recorded a payment on 1 invoice(s)."]
    assert paid.payments.count() == 1
    assert payable.payments.get().amount == 500  # the other selected invoice was still paid


def test_record_manual_payment_of_amount_due_on_paid_invoice_records_nothing(admin_client, business):
    paid = business.payments[0].invoice

    response = post_action(admin_client, Invoice, "record_manual_payment", [paid], apply=True, method="cash",
                           amount="", reference="", token="6f0c5c4b-6d1c-4a35-9d0e-1b1f0b7f3c15")

    assert messages_of(response) == [f"{paid}: A payment must be for a positive amount."]
    assert paid.payments.count() == 1


def test_record_manual_payment_with_sub_cent_amount_is_refused(admin_client, business):
    invoice = open_invoice(business)

    response = post_action(admin_client, Invoice, "record_manual_payment", [invoice], apply=True, method="cash",
                           amount="1.005", reference="", token="6f0c5c4b-6d1c-4a35-9d0e-1b1f0b7f3c14")

    assert any("more decimals than USD allows" in m for m in messages_of(response))
    assert not invoice.payments.exists()


def test_void_action_voids_open_invoice_with_audit_row(admin_client, business):
    invoice = open_invoice(business)

    response = post_action(admin_client, Invoice, "void", [invoice])

    invoice.refresh_from_db()
    assert messages_of(response) == ["Voided 1 invoice(s)."]
    assert invoice.status == InvoiceStatus.VOID and invoice.voided_at is not None
    change = invoice.status_changes.get(to_status=InvoiceStatus.VOID)
    assert (change.from_status, change.actor_label) == (InvoiceStatus.OPEN, "admin")


def test_void_action_on_invoice_with_payments_shows_error_and_changes_nothing(admin_client, business):
    invoice = open_invoice(business)
    payment_record_manual(customer=invoice.customer, invoice=invoice, amount=500, method="cash", actor=ACTOR)

    response = post_action(admin_client, Invoice, "void", [invoice])

    invoice.refresh_from_db()
    assert response.status_code == 200
    assert messages_of(response) == [f"{invoice}: An invoice with payments cannot be voided; refund the payments "
                                     f"first."]
    assert invoice.status == InvoiceStatus.OPEN
    assert not invoice.status_changes.filter(to_status=InvoiceStatus.VOID).exists()


def test_mark_paid_action_settles_invoice(admin_client, business):
    invoice = open_invoice(business)

    post_action(admin_client, Invoice, "mark_paid", [invoice])

    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due) == (InvoiceStatus.PAID, 0)
    assert invoice.status_changes.filter(to_status=InvoiceStatus.PAID, actor_label="admin",
                                         reason="marked paid by staff in the back office").exists()


def test_mark_paid_on_void_invoice_shows_error(admin_client, business):
    invoice = open_invoice(business)
    post_action(admin_client, Invoice, "void", [invoice])

    response = post_action(admin_client, Invoice, "mark_paid", [invoice])

    invoice.refresh_from_db()
    assert messages_of(response) == [f"{invoice}: A void invoice cannot become paid."]
    assert invoice.status == InvoiceStatus.VOID


def test_refund_action_refunds_rest_of_payment_when_amount_left_empty(admin_client, business):
    payment = business.payments[0]  # 29.99 paid, 1.00 already refunded

    response = post_action(admin_client, Payment, "refund", [payment], apply=True, amount="", reason="duplicate",
                           token="6f0c5c4b-6d1c-4a35-9d0e-1b1f0b7f3c21")

    payment.refresh_from_db()
    assert messages_of(response) == ["Refunded 1 payment(s)."]
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.REFUNDED, 2999)
    refund = payment.refunds.get(reason="duplicate")
    assert (refund.amount, refund.actor_label, refund.status) == (2899, "admin", "succeeded")
    assert payment.status_changes.filter(to_status=PaymentStatus.REFUNDED, actor_label="admin").exists()


def test_refund_action_partial_amount(admin_client, business):
    payment = business.payments[0]

    post_action(admin_client, Payment, "refund", [payment], apply=True, amount="2.50", reason="partial",
                token="6f0c5c4b-6d1c-4a35-9d0e-1b1f0b7f3c22")

    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.PARTIALLY_REFUNDED, 350)


def test_refund_form_submitted_twice_refunds_once(admin_client, business):
    payment = business.payments[0]
    form = {"amount": "2.50", "reason": "double click", "token": "6f0c5c4b-6d1c-4a35-9d0e-1b1f0b7f3c23"}

    post_action(admin_client, Payment, "refund", [payment], apply=True, **form)
    post_action(admin_client, Payment, "refund", [payment], apply=True, **form)

    payment.refresh_from_db()
    assert payment.refunds.filter(reason="double click").count() == 1
    assert payment.amount_refunded == 350


def test_refund_more_than_refundable_shows_error_and_changes_nothing(admin_client, business):
    payment = business.payments[0]

    response = post_action(admin_client, Payment, "refund", [payment], apply=True, amount="100", reason="too much",
                           token="6f0c5c4b-6d1c-4a35-9d0e-1b1f0b7f3c24")

    payment.refresh_from_db()
    assert messages_of(response) == [f"{payment}: Refund must be between 1 and 2899."]
    assert payment.amount_refunded == 100
    assert not payment.refunds.filter(reason="too much").exists()


def test_refund_of_pending_card_payment_shows_error(admin_client, business):
    payment = PaymentFactory(customer=business.customers[0])

    response = post_action(admin_client, Payment, "refund", [payment], apply=True, amount="", reason="x",
                           token="6f0c5c4b-6d1c-4a35-9d0e-1b1f0b7f3c25")

    assert messages_of(response) == [f"{payment}: A pending payment cannot be refunded."]
    assert not payment.refunds.exists()


def test_card_refund_stripe_refuses_shows_its_error_and_leaves_the_payment_unchanged(admin_client, business,
                                                                                     monkeypatch, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_admin"
    payment = PaymentFactory(customer=business.customers[0], status=PaymentStatus.SUCCEEDED, amount=1500,
                             provider_payment_id=new_id("pi"))

    def refused(**kwargs):
        raise PaymentProviderError("Stripe request failed: charge disputed")

    monkeypatch.setattr(stripe_gateway, "refund_create", refused)
    response = post_action(admin_client, Payment, "refund", [payment], apply=True, amount="", reason="card",
                           token="6f0c5c4b-6d1c-4a35-9d0e-1b1f0b7f3c27")

    payment.refresh_from_db()
    assert messages_of(response) == [f"{payment}: Stripe request failed: charge disputed"]
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.SUCCEEDED, 0)
    assert list(payment.refunds.values_list("status", "amount")) == [("failed", 1500)]


def test_refund_status_changes_are_shown_on_the_refund_and_read_only(admin_client, business, monkeypatch,
                                                                       settings):
    """The business's refunds are manual (no status moves); a card refund Stripe answered `pending` has one."""
    settings.STRIPE_SECRET_KEY = "sk_test_admin"
    payment = PaymentFactory(customer=business.customers[0], status=PaymentStatus.SUCCEEDED, amount=1500,
                             provider_payment_id=new_id("pi"))
    monkeypatch.setattr(stripe_gateway, "refund_create", lambda **kwargs: stripe_gateway.RefundResult(
        id="re_admin_1", status="pending", amount=kwargs["amount"], currency="USD",
        payment_intent_id=kwargs["payment_intent_id"], charge_id=""))
    refund = payment_refund(payment=payment, actor=ACTOR, amount=500, reason="bank refund")
    change = RefundStatusChange.objects.get(refund=refund)
    prefix = "/admin/payments/refundstatuschange"

    refund_page = admin_client.get(change_url(refund)).content.decode()
    changelist, change_page = changelist_and_change_page(admin_client, RefundStatusChange)

    assert "Status changes (most recent)" in refund_page and "re_admin_1" in refund_page
    assert changelist.status_code == change_page.status_code == 200
    assert 'name="_save"' not in change_page.content.decode()
    assert admin_client.get(f"{prefix}/add/").status_code == 403
    assert admin_client.post(change_url(change), {"reason": "edited"}).status_code == 403
    assert admin_client.post(f"{prefix}/{change.pk}/delete/", {"post": "yes"}).status_code == 403
    assert (change.from_status, change.to_status) == ("requested", "pending")
    assert RefundStatusChange.objects.count() == 1


def test_refund_form_without_reason_is_shown_again(admin_client, business):
    payment = business.payments[0]

    response = post_action(admin_client, Payment, "refund", [payment], apply=True, amount="1", reason="",
                           token="6f0c5c4b-6d1c-4a35-9d0e-1b1f0b7f3c26")

    assert response.status_code == 200
    assert response.context["form"].errors == {"reason": ["This field is required."]}
    assert payment.refunds.count() == 1


@pytest.mark.parametrize(("model", "action"), [(Invoice, "record_manual_payment"), (Invoice, "void"),
                                               (Invoice, "mark_paid"), (Payment, "refund")])
def test_staff_without_permission_neither_sees_nor_runs_action(client, business, model, action):
    client.force_login(staff_user(*view_permissions("payments"), "payments.change_invoice",
                                  "payments.change_payment"))
    invoice = open_invoice(business)
    target = invoice if model is Invoice else business.payments[0]
    before = (list(Invoice.objects.values_list("status", "amount_due")),
              list(Payment.objects.values_list("status", "amount_refunded")), Refund.objects.count())

    listing = client.get(changelist_url(model))
    response = post_action(client, model, action, [target], apply=True, method="cash", amount="", reason="x",
                           reference="", token="6f0c5c4b-6d1c-4a35-9d0e-1b1f0b7f3c31")

    assert listing.status_code == 200
    assert action not in action_names(listing)
    assert response.status_code == 200
    assert before == (list(Invoice.objects.values_list("status", "amount_due")),
                      list(Payment.objects.values_list("status", "amount_refunded")), Refund.objects.count())


def test_staff_with_permission_runs_only_that_action(client, business):
    client.force_login(staff_user(*view_permissions("payments"), "payments.void_invoice"))
    invoice = open_invoice(business)

    offered = action_names(client.get(changelist_url(Invoice)))
    post_action(client, Invoice, "void", [invoice])

    assert offered == {"void", "export_csv"}  # the export needs only the view permission
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.VOID


@pytest.mark.parametrize("model", READ_ONLY_MODELS, ids=lambda m: m.__name__)
def test_read_only_models_refuse_add_change_and_delete(admin_client, business, model):
    obj = model.objects.first()
    before = model.objects.count()
    prefix = f"/admin/{model._meta.app_label}/{model._meta.model_name}"

    page = admin_client.get(change_url(obj))

    assert admin_client.get(f"{prefix}/add/").status_code == 403
    assert admin_client.post(f"{prefix}/add/", {}).status_code == 403
    assert admin_client.post(change_url(obj), {"reason": "edited"}).status_code == 403
    assert admin_client.post(f"{prefix}/{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    assert model.objects.count() == before
    assert 'name="_save"' not in page.content.decode()
    assert "delete_selected" not in action_names(admin_client.get(changelist_url(model)))


def test_invoice_and_payment_status_cannot_be_changed_in_form(admin_client, business):
    invoice = open_invoice(business)
    payment = business.payments[0]

    invoice_form = change_form_data(admin_client.get(change_url(invoice)), status="paid", total="0",
                                    metadata='{"note": "x"}')
    payment_form = change_form_data(admin_client.get(change_url(payment)), status="failed", amount="1",
                                    reference="R2")

    assert admin_client.post(change_url(invoice), invoice_form).status_code == 302
    assert admin_client.post(change_url(payment), payment_form).status_code == 302

    invoice.refresh_from_db()
    payment.refresh_from_db()
    assert (invoice.status, invoice.total, invoice.metadata) == (InvoiceStatus.OPEN, 2999, {"note": "x"})
    assert (payment.status, payment.amount, payment.reference) == (PaymentStatus.PARTIALLY_REFUNDED, 2999, "R2")


def test_invoices_and_payments_are_not_added_or_deleted_by_hand(admin_client, client, business):
    invoice = business.payments[0].invoice
    invoice_mark_paid(invoice=open_invoice(business), actor=ACTOR)
    client.force_login(staff_user("payments.view_invoice", "payments.change_invoice", username="no-adder"))

    # Only one-off invoices are added by hand (test_admin_one_off_invoices.py), with their own permission.
    assert client.get("/admin/payments/invoice/add/").status_code == 403
    assert admin_client.get("/admin/payments/payment/add/").status_code == 403
    assert admin_client.post(f"/admin/payments/invoice/{invoice.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Invoice.objects.filter(pk=invoice.pk).exists()


def test_past_due_filter_lists_open_invoices_past_their_due_date(admin_client, business):
    response = admin_client.get(changelist_url(Invoice), {"collection": "past_due"})

    listed = {i.pk for i in response.context["cl"].result_list}
    assert listed == set(Invoice.objects.filter(status=InvoiceStatus.OPEN).values_list("pk", flat=True))
    assert len(listed) == 2
    assert re.search(r"Open and past due", response.content.decode())


@pytest.fixture
def failed_event():
    customer = StripeCustomerFactory(stripe_customer_id=new_id("cus"))
    event = stripe_event("setup_intent.succeeded", setup_intent_object(
        id=new_id("seti"), customer=stripe_account_id(customer), payment_method="pm_from_admin"))
    return StripeEvent.objects.create(event_id=event["id"], type=event["type"], payload=event,
                                      status=ProviderEventStatus.FAILED, attempts=1, error="earlier failure")


def test_staff_reprocess_action_runs_the_event_again(client, failed_event):
    staff = StaffUserFactory()
    client.force_login(staff)

    response = client.post("/admin/payments_stripe/stripeevent/", {"action": "reprocess",
                                                             "_selected_action": [failed_event.pk]})

    failed_event.refresh_from_db()
    assert response.status_code == 302
    assert failed_event.status == ProviderEventStatus.PROCESSED and failed_event.attempts == 2
    assert failed_event.payload["data"]["object"]["payment_method"] == "pm_from_admin"


def test_events_are_read_only_in_the_admin(client, failed_event):
    client.force_login(StaffUserFactory())

    assert client.get("/admin/payments_stripe/stripeevent/").status_code == 200
    assert client.get(f"/admin/payments_stripe/stripeevent/{failed_event.pk}/change/").status_code == 200
    assert client.get("/admin/payments_stripe/stripeevent/add/").status_code == 403
    deleted = client.post(f"/admin/payments_stripe/stripeevent/{failed_event.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 403
    assert StripeEvent.objects.filter(pk=failed_event.pk).exists()


def test_staff_without_change_permission_cannot_reprocess(client, failed_event):
    from django.contrib.auth.models import Permission

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_providerevent"))
    client.force_login(viewer)

    client.post("/admin/payments_stripe/stripeevent/", {"action": "reprocess", "_selected_action": [failed_event.pk]})

    failed_event.refresh_from_db()
    assert failed_event.attempts == 1


def test_credit_pack_order_search_finds_by_customer_email_and_filters_by_status(admin_client, business):
    order = CreditPackOrder.objects.select_related("customer").order_by("pk").first()
    response = admin_client.get(changelist_url(CreditPackOrder), {"q": order.customer.email, "status": "pending"})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [order]
    assert "credits-100" in response.content.decode()


def test_the_customer_page_shows_its_provider_accounts_read_only(admin_client):
    customer = StripeCustomerFactory(stripe_customer_id="cus_shown", stripe_default_payment_method_id="pm_shown")
    page = admin_client.get(change_url(customer))

    [accounts] = [inline for inline in page.context["inline_admin_formsets"]
                  if inline.formset.model is ProviderAccount]
    assert "cus_shown" in page.content.decode() and "pm_shown" in page.content.decode()
    assert not accounts.has_add_permission and not accounts.has_change_permission
    found = admin_client.get(changelist_url(type(customer)), {"q": "cus_shown"}).context["cl"].result_list
    assert list(found) == [customer]


def test_staff_map_a_plan_to_a_provider_price_on_the_plan_page(admin_client):
    plan = PlanFactory(code="mapped")
    form = change_form_data(admin_client.get(change_url(plan)), **{
        "provider_prices-TOTAL_FORMS": "1", "provider_prices-0-provider": "stripe",
        "provider_prices-0-provider_price_id": "price_admin", "provider_prices-0-provider_product_id": "prod_1"})

    assert admin_client.post(change_url(plan), form).status_code == 302
    assert list(ProviderPlanPrice.objects.values_list("plan__code", "provider", "provider_price_id")) == [
        ("mapped", "stripe", "price_admin")]
