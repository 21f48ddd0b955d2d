"""A rail that is not Stripe, installed by dotted path in PAYMENT_PROVIDERS: it proves the callers speak
the contract only. It answers for the "paypal" payment method (a method no real rail answers for yet) and
records every request it is given; its applies write through the neutral services."""

from core.audit import Actor
from payments.models import PaymentStatus, RefundStatus
from payments.providers import (
    Capability,
    ChargeResult,
    CheckoutSession,
    CustomerAccount,
    ProviderBase,
    RefundResult,
    SetupSession,
)
from payments.services import payment_refund_apply, provider_account_reference_set, refund_transition
from payments.services.payment_sync import payment_sync_status


class FakeRail(ProviderBase):
    code = "paypal"
    codes = frozenset({"paypal"})
    capabilities = frozenset({Capability.OFF_SESSION_CHARGE, Capability.REFUNDS, Capability.HOSTED_CHECKOUT,
                              Capability.SAVED_PAYMENT_METHODS})
    unavailable_message = "The fake rail is switched off."
    requests: list = []

    def customer_account_ensure(self, *, customer):
        account = provider_account_reference_set(customer=customer, provider=self.code,
                                                 provider_customer_id=f"fake-cus-{customer.pk}")
        return CustomerAccount.of(account)

    def charge_off_session(self, request):
        self.requests.append(request)
        return ChargeResult(provider=self.code, reference=f"fake-ch-{request.metadata['payment_id']}",
                            status=PaymentStatus.SUCCEEDED, provider_status="COMPLETED", amount=request.amount,
                            currency=request.currency)

    def charge_apply(self, *, payment, result, observed_at, actor: Actor, reason, now=None):
        self.payment_reference_set(payment=payment, reference=result.reference)
        payment_sync_status(payment=payment, to_status=result.status, observed_at=observed_at, actor=actor,
                            reason=reason, now=now)

    def payment_reference(self, *, payment):
        return payment.provider_payment_id or ""

    def payment_reference_set(self, *, payment, reference):
        payment.provider, payment.provider_payment_id = self.code, reference
        payment.save(update_fields=["provider", "provider_payment_id", "updated_at"])

    def refund_create(self, request):
        self.requests.append(request)
        return RefundResult(provider=self.code, reference="fake-re", status=RefundStatus.SUCCEEDED,
                            provider_status="COMPLETED", amount=request.amount, currency=request.currency)

    def refund_apply(self, *, payment, refund, result, actor, reason, now=None):
        refund_transition(refund=refund, to_status=result.status, actor=actor, reason=reason)
        payment_refund_apply(payment=payment, amount=refund.amount, actor=actor, reason=reason, now=now)
        return True

    def checkout_session_create(self, request):
        self.requests.append(request)
        return CheckoutSession(provider=self.code, reference="fake-cs", url="https://pay.example.com/fake-cs",
                               status="open")

    def setup_session_create(self, request):
        self.requests.append(request)
        return SetupSession(provider=self.code, reference="fake-setup", client_secret="fake-secret", status="open")
