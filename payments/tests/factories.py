import factory

from payments.models import Invoice, InvoiceStatus, Payment, PaymentMethod, PaymentStatus
from subscriptions.tests.factories import CustomerFactory


class InvoiceFactory(factory.django.DjangoModelFactory):
    """A draft invoice with no lines; use payments.services.invoice_create for real ones."""

    class Meta:
        model = Invoice

    customer = factory.SubFactory(CustomerFactory)
    currency = factory.LazyAttribute(lambda i: i.customer.currency)
    status = InvoiceStatus.DRAFT


class PaymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Payment

    customer = factory.SubFactory(CustomerFactory)
    amount = 999
    currency = factory.LazyAttribute(lambda p: p.customer.currency)
    method = PaymentMethod.STRIPE
    status = PaymentStatus.PENDING
