"""`LemonSqueezyProvider`: the provider contract for a merchant of record, over this package's client.

Lemon Squeezy bills the customer (and handles their sales tax) itself, so this rail never charges or saves
payment methods for us (those calls answer 503 `capability_unavailable`); it offers:
- a checkout for a plan's variant (`checkout_session_create` with `plan_id` in the metadata), carrying our
  customer and plan in its custom data;
- changes asked of a subscription it bills (`subscription_change_request`): cancel, pause, resume, plan;
- usage reports for usage-priced variants (`usage_reports_send`);
- refunds staff ask for (`refund_create`): Lemon Squeezy refunds the order or subscription invoice;
- webhooks at /webhooks/lemonsqueezy/ (webhooks/) that mirror its subscriptions and money;
- its orders and subscription invoices for `payments reconcile` (`transactions_list`).
Client functions are looked up at call time (`client.<name>`), so a test's replacement applies.
"""

from __future__ import annotations

from datetime import datetime

from django.utils.translation import gettext as _

from core.audit import Actor
from core.exceptions import IllegalTransition, InvalidOperation
from payments.models import Payment, ProviderPlanPrice, ProviderSubscription, Refund
from payments.providers.base import (
    CHANGE_CANCEL,
    CHANGE_PAUSE,
    CHANGE_PLAN,
    CHANGE_RESUME,
    TRANSACTION_PAYMENT,
    TRANSACTION_REFUND,
    Capability,
    CheckoutRequest,
    CheckoutSession,
    ProviderBase,
    ProviderHealth,
    ProviderTransaction,
    RefundRequest,
    RefundResult,
    SubscriptionChange,
    UsageReport,
)
from payments.providers.lemonsqueezy import client
from payments.providers.lemonsqueezy.demo import demo_mirror_build
from payments.providers.lemonsqueezy.health import lemonsqueezy_health
from payments.providers.lemonsqueezy.models import LEMONSQUEEZY
from payments.providers.lemonsqueezy.money import refund_settle
from payments.providers.lemonsqueezy.payloads import LSMoney
from payments.providers.lemonsqueezy.usage import usage_reports_send
from subscriptions.models import Customer, Plan


class LemonSqueezyProvider(ProviderBase):
    code = LEMONSQUEEZY
    codes = frozenset({LEMONSQUEEZY})
    capabilities = frozenset({Capability.MERCHANT_OF_RECORD, Capability.REFUNDS, Capability.WEBHOOKS,
                              Capability.RECONCILIATION})
    unavailable_message = client.NOT_CONFIGURED
    webhook_view = "payments.providers.lemonsqueezy.webhooks.views.lemonsqueezy_webhook"
    webhook_event_apply = "payments.providers.lemonsqueezy.webhooks.services.lemonsqueezy_event_apply"

    def is_configured(self) -> bool:
        return client.is_configured()

    def health(self, *, deep: bool = False) -> ProviderHealth:
        return lemonsqueezy_health(deep=deep)

    def checkout_session_create(self, request: CheckoutRequest) -> CheckoutSession:
        """A checkout for the plan's variant; its custom data (our customer and plan) comes back in every
        webhook of the subscription it starts, which is how the mirror finds its customer."""
        plan_id = str(request.metadata.get("plan_id") or "")
        price = ProviderPlanPrice.objects.filter(provider=self.code, plan_id=int(plan_id) if plan_id.isdigit() else 0) \
            .first()
        if price is None:
            raise InvalidOperation(_("This plan is not sold through Lemon Squeezy (no variant is mapped to it)."),
                                   code="plan_not_on_rail",
                                   extra={"fields": {"plan": [_("No Lemon Squeezy variant.")]}})
        customer = Customer.objects.get(pk=request.account.customer_id)
        checkout = client.checkout_create(
            variant_id=price.provider_price_id, email=customer.email, name=customer.name,
            custom_data={"customer_id": str(customer.pk), "plan_id": str(price.plan_id)},
            redirect_url=request.success_url)
        return CheckoutSession(provider=self.code, reference=checkout.id, url=checkout.url, status="open",
                               raw=checkout)

    def subscription_change_request(self, change: SubscriptionChange) -> None:
        client.subscription_update(subscription_id=change.reference, attributes=_change_attributes(change))

    def mirrored_subscription_seed(self, *, customer: Customer, plan: Plan, started_at: datetime, as_of: datetime,
                                   actor: Actor) -> None:
        demo_mirror_build(customer=customer, plan=plan, started_at=started_at, as_of=as_of, actor=actor)

    def usage_reports_send(self, reports: list[UsageReport]) -> int:
        return usage_reports_send(reports=reports)

    def payment_reference(self, *, payment: Payment) -> str:
        # The subscription invoice when known (renewals have only that), else the initial order.
        return payment.provider_charge_id or payment.provider_payment_id or ""

    def refund_create(self, request: RefundRequest) -> RefundResult:
        """Refund through Lemon Squeezy (staff refunding from our admin or API): it sends the money back as
        the seller; its `subscription_payment_refunded` / `order_refunded` webhook then finds this refund
        already counted."""
        money = client.money_refund(reference=request.payment_reference, amount=request.amount)
        return RefundResult(provider=self.code, reference=f"{money.reference}-refund-{money.refunded_amount}",
                            status="succeeded", provider_status=money.status, amount=request.amount,
                            currency=request.currency, raw=money)

    def refund_apply(self, *, payment: Payment, refund: Refund, result: RefundResult, actor: Actor, reason: str,
                     now: datetime | None = None) -> bool:
        return refund_settle(payment=payment, refund=refund, result=result, actor=actor, reason=reason, now=now)

    def transactions_list(self, *, since: datetime, until: datetime) -> list[ProviderTransaction]:
        """Orders and subscription invoices created in [since, until), each a payment, and their refunds.
        The initial order and the initial subscription invoice are the same money: only the invoice of a
        mirrored subscription's first order is listed (our payment carries both ids)."""
        mirrored_orders = set(ProviderSubscription.objects.filter(provider=self.code)
                              .exclude(provider_order_id="").values_list("provider_order_id", flat=True))
        found = [money for money in client.orders_list() if money.id not in mirrored_orders]
        found += client.subscription_invoices_list()
        listed = []
        for money in found:
            if money.created_at is None or not since <= money.created_at < until:
                continue
            listed += _transactions(money, code=self.code)
        return listed


def _change_attributes(change: SubscriptionChange) -> dict:
    if change.action == CHANGE_CANCEL:
        if not change.at_period_end:
            raise IllegalTransition(_("Lemon Squeezy ends a cancelled subscription at its period end; cancel at the "
                                      "period end instead."), code="cancel_at_period_end_only")
        return {"cancelled": True}
    if change.action == CHANGE_PAUSE:
        # "void": nothing is billed while paused (our own pause means the same).
        return {"pause": {"mode": "void"}}
    if change.action == CHANGE_RESUME:
        return {"cancelled": False, "pause": None}
    if change.action == CHANGE_PLAN:
        return {"variant_id": int(change.price_reference) if change.price_reference.isdigit()
                else change.price_reference}
    raise InvalidOperation(_("Unknown subscription change %(action)r.") % {"action": change.action}, code="invalid")


def _transactions(money: LSMoney, *, code: str) -> list[ProviderTransaction]:
    if not money.is_paid or money.total <= 0:
        return []
    payment = ProviderTransaction(provider=code, kind=TRANSACTION_PAYMENT, reference=money.reference,
                                  status="succeeded", amount=money.total, currency=money.currency.lower(),
                                  at=money.created_at, raw=money)
    if not money.refunded_amount:
        return [payment]
    return [payment, ProviderTransaction(provider=code, kind=TRANSACTION_REFUND, reference=f"{money.reference}-refund",
                                         status="succeeded", amount=money.refunded_amount,
                                         currency=money.currency.lower(), at=money.updated_at,
                                         refunded_reference=money.reference, raw=money)]

