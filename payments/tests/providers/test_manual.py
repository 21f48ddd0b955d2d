import pytest

from core.audit import Actor
from core.exceptions import InvalidOperation
from payments.models import InvoiceStatus, PaymentMethod, PaymentStatus
from payments.providers import provider_for
from payments.providers.manual.services import payment_record_manual
from subscriptions.tests.factories import CustomerFactory


@pytest.mark.django_db
def test_a_manual_payment_recorded_through_the_rail_pays_its_invoice(first_invoice):
    rail = provider_for(PaymentMethod.CHECK)
    payment = rail.payment_record(customer=first_invoice.customer, amount=first_invoice.amount_due,
                                  method=PaymentMethod.CHECK, invoice=first_invoice, reference="cheque 1042",
                                  actor=Actor.system("test"))
    first_invoice.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and payment.reference == "cheque 1042"
    assert first_invoice.status == InvoiceStatus.PAID


@pytest.mark.django_db
def test_the_manual_rail_records_no_card_payment(first_invoice):
    with pytest.raises(InvalidOperation):
        provider_for("manual").payment_record(customer=first_invoice.customer, amount=100,
                                              method=PaymentMethod.STRIPE, actor=Actor.system("test"))
    assert not first_invoice.payments.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("fields", "field", "code"), [
    ({"currency": "EUR"}, "currency", "currency_mismatch"),
    ({"amount": 2501}, "amount", "amount_exceeds_due"),
    ({"amount": 2**63}, "amount", "invalid_amount"),
    ({"method": "paypal"}, "method", "invalid_method"),
])
def test_the_rail_refuses_what_does_not_fit_the_invoice_naming_the_field(first_invoice, fields, field, code):
    values = dict(customer=first_invoice.customer, amount=2500, method=PaymentMethod.CASH, currency="USD",
                  invoice=first_invoice, actor=Actor.system("test"))
    with pytest.raises(InvalidOperation) as refused:
        payment_record_manual(**{**values, **fields})
    assert (refused.value.code, list(refused.value.extra["fields"])) == (code, [field])
    assert not first_invoice.payments.exists()


@pytest.mark.django_db
def test_without_an_invoice_the_payment_is_in_the_customers_currency_with_its_description():
    customer = CustomerFactory(currency="GBP")
    payment = payment_record_manual(customer=customer, amount=700, method=PaymentMethod.BANK_TRANSFER, currency="gbp",
                                    description="consulting day", reference="BACS 77", actor=Actor.system("test"))
    assert (payment.currency, payment.description, payment.reference, payment.invoice) == (
        "GBP", "consulting day", "BACS 77", None)
    with pytest.raises(InvalidOperation) as refused:
        payment_record_manual(customer=customer, amount=700, method=PaymentMethod.CASH, currency="USD",
                              actor=Actor.system("test"))
    assert refused.value.extra["fields"] == {"currency": ["This payment must be in GBP, the currency of the customer."]}
