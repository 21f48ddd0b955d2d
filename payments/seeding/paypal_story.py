"""Demo customers who pay with a PayPal wallet: what PayPal would have told us, applied by the PayPal rail's
own sync (payments.providers.paypal.sync), the code that applies its API answers and webhooks. The ids are
fake (ORD..., CAP..., REF...) and nothing calls the network."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction

from core.audit import Actor
from payments.models import Invoice, Payment, PaymentMethod, Refund, RefundStatus
from payments.providers.paypal.models import PayPalAccount
from payments.providers.paypal.payloads import PayPalCapture, PayPalOrder, PayPalRefund
from payments.providers.paypal.services import paypal_customer_reference
from payments.providers.paypal.sync import custom_id_for_payment, payment_sync_order, refund_apply_paypal
from payments.services import payment_lock
from subscriptions.models import Customer

if TYPE_CHECKING:
    from payments.seeding.story import Story

PAYPAL_WEBHOOK = Actor.system("paypal-webhook")


def paypal_wallet_saved(*, customer: Customer, index: int, as_of: datetime) -> None:
    """A vaulted wallet, as an approved setup token leaves it."""
    PayPalAccount.objects.create(customer=customer, paypal_customer_id=paypal_customer_reference(customer.pk),
                                 vault_id=f"demo-vault-{index:03d}", vault_set_at=as_of)


def _order(payment: Payment, *, capture_id: str, status: str, at: datetime) -> PayPalOrder:
    capture = PayPalCapture(id=capture_id, status=status, amount=payment.amount, currency=payment.currency,
                            order_id=payment.paypal_order_id, custom_id=custom_id_for_payment(payment.pk),
                            invoice_id="", updated_at=at, status_reason="INSTRUMENT_DECLINED" if status == "DECLINED"
                            else "")
    return PayPalOrder(id=payment.paypal_order_id, status="COMPLETED", approve_url="", amount=payment.amount,
                       currency=payment.currency, custom_id=capture.custom_id, captures=(capture,), vault_id="",
                       customer_reference="")


@transaction.atomic
def paypal_payment(story: Story, invoice: Invoice, *, succeed: bool, at: datetime) -> Payment:
    """An order paid with the vaulted wallet: its capture pending, then completed or declined."""
    payment = Payment.objects.create(customer=story.customer, invoice=invoice, amount=invoice.amount_due,
                                     currency=invoice.currency, method=PaymentMethod.PAYPAL,
                                     paypal_order_id=story.next_ref("ORD"), metadata={"demo": True})
    payment = payment_lock(payment_id=payment.pk)
    capture_id = story.next_ref("CAP")
    payment_sync_order(payment=payment, order=_order(payment, capture_id=capture_id, status="PENDING", at=at),
                       observed_at=at, actor=PAYPAL_WEBHOOK, reason="PAYMENT.CAPTURE.PENDING", now=at)
    done = at + timedelta(seconds=3)
    status = "COMPLETED" if succeed else "DECLINED"
    payment_sync_order(payment=payment, order=_order(payment, capture_id=capture_id, status=status, at=done),
                       observed_at=done, actor=PAYPAL_WEBHOOK, reason=f"PAYMENT.CAPTURE.{status}", now=done)
    return payment


@transaction.atomic
def paypal_refund(story: Story, payment: Payment, *, amount: int, reason: str, at: datetime) -> None:
    """Staff refund a PayPal payment: the refund is requested, then PayPal's answer that it completed."""
    payment = payment_lock(payment_id=payment.pk)
    refund_id = story.next_ref("REF")
    refund = Refund(payment=payment, amount=amount, currency=payment.currency, status=RefundStatus.REQUESTED,
                    idempotency_key=f"seed:{refund_id}", reason=reason[:500])
    refund.stamp(story.staff)
    refund.save()
    answer = PayPalRefund(id=refund_id, status="COMPLETED", amount=amount, currency=payment.currency, capture_id="",
                          custom_id=f"refund-{refund.pk}", updated_at=at)
    refund_apply_paypal(payment=payment, refund=refund, result=answer, actor=PAYPAL_WEBHOOK, reason=reason, now=at)
