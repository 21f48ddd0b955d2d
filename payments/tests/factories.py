import factory

from payments.models import MANUAL_PAYMENT_METHODS, Invoice, InvoiceStatus, Payment, PaymentMethod, PaymentStatus
from payments.tests.stripe_support import stripe_account_set
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
    # The rail holding the payment's ids: manual for cash, check and bank transfer, else the method's own.
    provider = factory.LazyAttribute(lambda p: "manual" if p.method in MANUAL_PAYMENT_METHODS else p.method)
    status = PaymentStatus.PENDING


class StripeCustomerFactory(CustomerFactory):
    """A customer with a Stripe account: `stripe_customer_id`, `stripe_default_payment_method_id` and
    `stripe_default_payment_method_set_at` become its Stripe ProviderAccount."""

    @classmethod
    def _create(cls, model_class, *args, stripe_customer_id=None, stripe_default_payment_method_id="",
                stripe_default_payment_method_set_at=None, **kwargs):
        customer = super()._create(model_class, *args, **kwargs)
        stripe_account_set(customer, customer_id=stripe_customer_id, payment_method=stripe_default_payment_method_id,
                           set_at=stripe_default_payment_method_set_at)
        return customer
