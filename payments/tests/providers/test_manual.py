import pytest

from core.audit import Actor
from core.exceptions import InvalidOperation
from payments.models import InvoiceStatus, PaymentMethod, PaymentStatus
from payments.providers import provider_for


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
