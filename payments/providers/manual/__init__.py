"""Cash, check and bank transfer: money that moves outside any provider's API.

Staff record what arrived (`payment_record`, which is `services.payment_record_manual`: the admin and the
API call it) and refund by hand; no card capability is offered, so
collection and checkout never pick this rail, and a refund of a manual payment is counted at once
(payments.services.refunds) instead of asking a provider.
"""

from datetime import datetime

from core.audit import Actor
from payments.models import MANUAL_PAYMENT_METHODS, MANUAL_PROVIDER, Invoice, Payment, PaymentMethod
from payments.providers.base import Capability, ProviderBase
from payments.providers.manual.services import payment_record_manual
from subscriptions.models import Customer


class ManualProvider(ProviderBase):
    code = MANUAL_PROVIDER
    codes = frozenset({MANUAL_PROVIDER, *MANUAL_PAYMENT_METHODS})
    capabilities: frozenset[Capability] = frozenset()
    methods = tuple(PaymentMethod(method) for method in MANUAL_PAYMENT_METHODS)

    def payment_record(self, *, customer: Customer, amount: int, method: str, actor: Actor,
                       currency: str | None = None, invoice: Invoice | None = None, reference: str = "",
                       description: str = "", reason: str = "", now: datetime | None = None) -> Payment:
        """Money received by hand, recorded as succeeded (and applied to `invoice` when given)."""
        return payment_record_manual(customer=customer, amount=amount, method=method, actor=actor, currency=currency,
                                     invoice=invoice, reference=reference, description=description, reason=reason,
                                     now=now)
