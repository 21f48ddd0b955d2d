"""The contract every payment rail implements: neutral frozen dataclasses in and out, capabilities declared.

Billing, collection, dunning, refunds and checkout speak only this contract (through
`payments.providers.registry`), so a rail is added by writing one package, not by editing them. A rail's
methods come in two kinds, matching "commit the intent, call the provider, record the outcome":
- calls (`charge_off_session`, `refund_create`, `checkout_session_create`, `setup_session_create`,
  `customer_account_ensure`) talk to the provider over the network; callers make them with no
  transaction open and no row locked;
- applies (`charge_apply`, `refund_apply`, `payment_reference_set`) record a call's answer on rows the
  caller has locked, inside its short transaction: the rail knows where its own ids live.
Errors are core.exceptions: CardDeclined (402), PaymentProviderError (502), PaymentProviderUnavailable
(503). A rail that lacks a capability raises PaymentProviderUnavailable from the matching call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from django.utils.translation import gettext as _

from core.exceptions import InvalidOperation, PaymentProviderUnavailable

if TYPE_CHECKING:
    from core.audit import Actor
    from payments.models import Payment, ProviderAccount, Refund
    from subscriptions.models import Customer, Plan


class Capability(StrEnum):
    # Charge a saved payment method while the customer is away (renewals, dunning).
    OFF_SESSION_CHARGE = "off_session_charge"
    # A page hosted by the provider where the customer pays one of our invoices.
    HOSTED_CHECKOUT = "hosted_checkout"
    # Money goes back through the provider's API (a manual rail refunds by hand instead).
    REFUNDS = "refunds"
    # The provider keeps a customer's card or account for later charges.
    SAVED_PAYMENT_METHODS = "saved_payment_methods"
    # The provider is the seller of record and bills by itself; we mirror its state.
    MERCHANT_OF_RECORD = "merchant_of_record"
    # The provider reports what happened through signed webhooks.
    WEBHOOKS = "webhooks"
    # The provider lists its payments and refunds for a window (`transactions_list`), so
    # `manage.py payments reconcile` can compare them with ours.
    RECONCILIATION = "reconciliation"


@dataclass(frozen=True)
class CustomerAccount:
    """A customer of ours as the provider knows them."""
    provider: str
    customer_id: int
    # The provider's id for the customer ("" when the provider keeps no customer record).
    reference: str
    # The saved payment method off-session charges use ("" when none is saved).
    default_payment_method: str = ""

    @classmethod
    def of(cls, account: ProviderAccount) -> CustomerAccount:
        return cls(provider=account.provider, customer_id=account.customer_id,
                   reference=account.provider_customer_id or "",
                   default_payment_method=account.default_payment_method_id)


@dataclass(frozen=True)
class ChargeRequest:
    account: CustomerAccount
    # Minor units of `currency`, like every amount in the app.
    amount: int
    currency: str
    # The same key always answers the same charge: a retried call never charges twice.
    idempotency_key: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChargeResult:
    provider: str
    # The provider's id for the payment.
    reference: str
    # A PaymentStatus value, or "" when the provider's answer is not an outcome yet.
    status: str
    provider_status: str
    amount: int
    currency: str
    failure_code: str = ""
    failure_message: str = ""
    # The provider's id of the movement of money behind the payment (Payment.provider_charge_id), if any.
    charge_reference: str = ""
    # The rail's own answer, for logs and the rail itself; `charge_apply` needs only the fields above.
    raw: object = None


@dataclass(frozen=True)
class RefundRequest:
    # The provider's id for the payment being refunded.
    payment_reference: str
    amount: int
    currency: str
    idempotency_key: str
    # Ours (refund_id, payment_id): the provider echoes it, so its messages find our refund.
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundResult:
    provider: str
    reference: str
    # A RefundStatus value, or "" when the provider's answer is not an outcome yet.
    status: str
    provider_status: str
    amount: int
    currency: str
    raw: object = None


@dataclass(frozen=True)
class CheckoutLine:
    name: str
    # Minor units of the checkout's currency.
    unit_amount: int
    quantity: int = 1


@dataclass(frozen=True)
class CheckoutRequest:
    account: CustomerAccount
    lines: tuple[CheckoutLine, ...]
    currency: str
    success_url: str
    cancel_url: str
    # Keep the payment method for off-session renewals.
    save_payment_method: bool
    idempotency_key: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckoutSession:
    provider: str
    reference: str
    # Where the customer's browser is sent to pay.
    url: str
    status: str
    raw: object = None


@dataclass(frozen=True)
class SetupRequest:
    account: CustomerAccount
    idempotency_key: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    # Where a rail that has the customer approve on its own page (PayPal) sends the browser back; ""
    # uses CHECKOUT_SUCCESS_URL / CHECKOUT_CANCEL_URL. Rails saving through a front-end library ignore them.
    return_url: str = ""
    cancel_url: str = ""


@dataclass(frozen=True)
class SetupSession:
    provider: str
    reference: str
    # Handed to the provider's front-end library, which collects the payment method.
    client_secret: str
    status: str
    # The provider's public key that library is started with ("" when it needs none).
    publishable_key: str = ""
    raw: object = None
    # Where the customer's browser is sent to approve saving it, for rails without a front-end library
    # (PayPal's approve link); "" otherwise.
    url: str = ""


def external_refund_key(*, provider: str, reference: str) -> str:
    """The idempotency key of the Refund row we write for a refund made at the provider itself (its
    dashboard): unique like every Refund key, so a redelivered webhook, a replay or a reconciliation finds
    that row instead of counting the refund twice."""
    return f"{provider}-refund:{reference}"


# ProviderTransaction.kind
TRANSACTION_PAYMENT = "payment"
TRANSACTION_REFUND = "refund"


@dataclass(frozen=True)
class ProviderTransaction:
    """One payment or refund as the provider lists it, for reconciliation."""
    provider: str
    # TRANSACTION_PAYMENT or TRANSACTION_REFUND.
    kind: str
    # The provider's id of this movement of money (a capture, a charge, a refund).
    reference: str
    # A PaymentStatus (payments) or RefundStatus (refunds) value: the provider's state in our words.
    status: str
    # Minor units, positive for refunds too.
    amount: int
    currency: str
    at: datetime | None = None
    # Our ids, where the provider echoes what we sent it (PayPal's custom_id, Stripe's metadata).
    payment_id: int | None = None
    invoice_id: int | None = None
    refund_id: int | None = None
    # For a refund: the provider's id of the movement it refunds (matches a payment's `reference` above).
    refunded_reference: str = ""
    # The rail's own object, read only by the same rail's applies (`refund_apply`).
    raw: object = None


# ApiProbe.status: the provider answered us as an authenticated caller; it did not answer in time or answered
# 5xx (its trouble, usually passing); it refused our credentials or request (ours to fix: the rail is down).
PROBE_OK, PROBE_DEGRADED, PROBE_ERROR = "ok", "degraded", "error"


@dataclass(frozen=True)
class ApiProbe:
    """One authenticated round trip to the provider, made by `health(deep=True)` (`/healthz?deep=1`)."""
    status: str
    latency_ms: int
    message: str = ""

    def details(self) -> dict:
        return {"status": self.status, "latency_ms": self.latency_ms}
# SubscriptionChange.action
CHANGE_CANCEL = "cancel"
CHANGE_PAUSE = "pause"
CHANGE_RESUME = "resume"
CHANGE_PLAN = "plan"


@dataclass(frozen=True)
class SubscriptionChange:
    """A change asked of a subscription a merchant-of-record rail bills (`Subscription.billed_by`): the rail
    asks the provider to make it, and the provider's webhook then moves our mirror, as for every change the
    provider makes by itself. Nothing of ours is written by the request."""
    # The provider's id of the subscription.
    reference: str
    # CHANGE_CANCEL, CHANGE_PAUSE, CHANGE_RESUME or CHANGE_PLAN.
    action: str
    at_period_end: bool = True
    # For CHANGE_PLAN: the provider's price id of the new plan (ProviderPlanPrice).
    price_reference: str = ""


@dataclass(frozen=True)
class UsageReport:
    """The usage of one mirrored subscription's current period, for a rail that bills usage itself."""
    subscription_id: int
    # The provider's id of the subscription.
    reference: str
    # The whole period's quantity so far (a rail sets it, so reporting it again changes nothing).
    quantity: int


@dataclass(frozen=True)
class ProviderHealth:
    # "ok", "degraded" (reported, the instance stays in service) or "down" (the rail cannot work: the
    # provider refuses our credentials); a rail is not a core module, so /healthz stays 200 either way.
    status: str
    problems: tuple[str, ...] = ()
    details: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def of(cls, *, problems: list[str], details: dict, probe: ApiProbe | None = None) -> ProviderHealth:
        """A rail's section from its problems and, when deep, its probe (named in `details["api"]`)."""
        if probe is not None:
            details = {**details, "api": probe.details()}
            if probe.status != PROBE_OK:
                problems = [*problems,
                            f"authenticated call {probe.status} after {probe.latency_ms} ms: {probe.message}"]
        status = ("down" if probe is not None and probe.status == PROBE_ERROR
                  else "degraded" if problems else "ok")
        return cls(status=status, problems=tuple(problems), details=details)


@runtime_checkable
class PaymentProvider(Protocol):
    # The code payments record in `Payment.method`, and the other codes this rail answers for.
    code: str
    codes: frozenset[str]
    capabilities: frozenset[Capability]
    # Why the rail cannot be used right now (shown with the 503), when `is_configured()` is False.
    unavailable_message: str

    def is_configured(self) -> bool: ...

    def health(self, *, deep: bool = False) -> ProviderHealth:
        """The rail's state from configuration and our rows; with `deep`, also one cheap authenticated
        call to the provider (`/healthz?deep=1`)."""

    def customer_account(self, *, customer: Customer) -> CustomerAccount | None:
        """What the provider knows of the customer, from our rows only (no network call)."""

    def customer_account_ensure(self, *, customer: Customer) -> CustomerAccount:
        """The customer's account at the provider, created the first time (call: no transaction open)."""

    def charge_off_session(self, request: ChargeRequest) -> ChargeResult: ...

    def charge_apply(self, *, payment: Payment, result: ChargeResult, observed_at: datetime, actor: Actor,
                     reason: str, now: datetime | None = None) -> None:
        """Record a charge's answer on its locked payment (ids and status, order-proof)."""

    def payment_reference_set(self, *, payment: Payment, reference: str) -> None:
        """Remember the provider's id of a locked payment whose charge raised (an error may still name it)."""

    def refund_create(self, request: RefundRequest) -> RefundResult: ...

    def refund_apply(self, *, payment: Payment, refund: Refund, result: RefundResult, actor: Actor, reason: str,
                     now: datetime | None = None) -> bool:
        """Record a refund's answer on it and its locked payment; False when it is old news."""

    def payment_reference(self, *, payment: Payment) -> str:
        """The provider's id of a payment ("" when the payment never reached the provider)."""

    def checkout_session_create(self, request: CheckoutRequest) -> CheckoutSession: ...

    def setup_session_create(self, request: SetupRequest) -> SetupSession: ...

    def transactions_list(self, *, since: datetime, until: datetime) -> list[ProviderTransaction]:
        """The provider's payments and refunds in [since, until) (call: no transaction open)."""

    def setup_session_complete(self, *, customer: Customer, reference: str, actor: Actor) -> CustomerAccount:
        """After the customer approved a setup session on the provider's page (its `url`): keep the payment
        method it saved as the default for renewals (call, then a short write)."""


class ProviderBase:
    """What a rail without a capability answers: every call it cannot make raises
    PaymentProviderUnavailable (503) naming the rail and the capability, so a caller that did not check
    `capabilities` still fails cleanly. A rail subclasses it and overrides what it offers."""

    code: str = ""
    codes: frozenset[str] = frozenset()
    capabilities: frozenset[Capability] = frozenset()
    unavailable_message: str = ""
    # Dotted path of the rail's webhook view, mounted at /webhooks/<code>/ ("" for a rail without webhooks).
    webhook_view: str = ""
    # Dotted path of the rail's function applying one stored inbox event, `apply(*, event_pk) -> ProviderEvent`,
    # called by the inbox's worker job (payments.providers.inbox); "" for a rail without webhooks.
    webhook_event_apply: str = ""

    def _lacks(self, capability: Capability) -> PaymentProviderUnavailable:
        return PaymentProviderUnavailable(_("The %(rail)s payment provider does not offer %(capability)s.")
                                          % {"rail": self.code, "capability": capability.value},
                                          code="capability_unavailable",
                                          extra={"provider": self.code, "capability": capability.value})

    def is_configured(self) -> bool:
        return True

    def health(self, *, deep: bool = False) -> ProviderHealth:
        return ProviderHealth(status="ok")

    def customer_account(self, *, customer: Customer) -> CustomerAccount | None:
        """The customer's ProviderAccount at this rail, as the contract's dataclass (None when none)."""
        # Imported here, not at the top: payments.models loads this package for its shared models, so the
        # contract cannot import models (or the selectors reading them) while it is being loaded.
        from payments.selectors.provider_accounts import provider_account_get

        account = provider_account_get(customer=customer, provider=self.code)
        return CustomerAccount.of(account) if account is not None else None

    def customer_account_ensure(self, *, customer: Customer) -> CustomerAccount:
        raise self._lacks(Capability.SAVED_PAYMENT_METHODS)

    def charge_off_session(self, request: ChargeRequest) -> ChargeResult:
        raise self._lacks(Capability.OFF_SESSION_CHARGE)

    def charge_apply(self, *, payment: Payment, result: ChargeResult, observed_at: datetime, actor: Actor,
                     reason: str, now: datetime | None = None) -> None:
        raise self._lacks(Capability.OFF_SESSION_CHARGE)

    def payment_reference_set(self, *, payment: Payment, reference: str) -> None:
        raise self._lacks(Capability.OFF_SESSION_CHARGE)

    def payment_reference(self, *, payment: Payment) -> str:
        return ""

    def refund_create(self, request: RefundRequest) -> RefundResult:
        raise self._lacks(Capability.REFUNDS)

    def refund_apply(self, *, payment: Payment, refund: Refund, result: RefundResult, actor: Actor, reason: str,
                     now: datetime | None = None) -> bool:
        raise self._lacks(Capability.REFUNDS)

    def checkout_session_create(self, request: CheckoutRequest) -> CheckoutSession:
        raise self._lacks(Capability.HOSTED_CHECKOUT)

    def setup_session_create(self, request: SetupRequest) -> SetupSession:
        raise self._lacks(Capability.SAVED_PAYMENT_METHODS)

    def transactions_list(self, *, since: datetime, until: datetime) -> list[ProviderTransaction]:
        raise self._lacks(Capability.RECONCILIATION)

    def subscription_change_request(self, change: SubscriptionChange) -> None:
        """Ask the provider to change a subscription it bills (call: no transaction open)."""
        raise self._lacks(Capability.MERCHANT_OF_RECORD)

    def mirrored_subscription_seed(self, *, customer: Customer, plan: Plan, started_at: datetime, as_of: datetime,
                                   actor: Actor) -> None:
        """`seed --demo`: a subscription this rail billed from `started_at` to `as_of`, mirrored exactly as
        its webhooks would have left it (its paid periods, credits), without calling the provider."""
        raise self._lacks(Capability.MERCHANT_OF_RECORD)

    def usage_reports_send(self, reports: list[UsageReport]) -> int:
        """Report usage of subscriptions the provider bills; returns how many it accepted (call)."""
        raise self._lacks(Capability.MERCHANT_OF_RECORD)

    def setup_session_complete(self, *, customer: Customer, reference: str, actor: Actor) -> CustomerAccount:
        # Rails whose front-end library saves the method report it by webhook: nothing to complete.
        raise InvalidOperation(_("The %(rail)s payment provider saves payment methods by itself; there is nothing to "
                                 "confirm.") % {"rail": self.code}, code="nothing_to_confirm",
                               extra={"fields": {"provider": [_("%(rail)s needs no confirmation.")
                                                              % {"rail": self.code}]}})
