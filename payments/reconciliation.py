"""Reconcile one payment rail with our books (`manage.py payments reconcile`): list the provider's
payments and refunds for a window through the contract (`transactions_list`), compare them with ours and
report every drift; `reconcile_fix` applies the provider's word through the same state machines its
webhooks go through.

Drifts: `missing_here` (the provider has it, we do not), `missing_there` (we hold a collected payment or
a settled refund the provider does not list), `status_differs`, `amount_differs`. Fixable: a status (the
payment and refund state machines decide whether the move is legal; a refused one stays a drift) and a
refund made at the provider of a payment we know (recorded as a succeeded Refund). Amounts, and money we
cannot place, are for staff: they stay drifts, so the command keeps exiting non-zero until resolved.

The provider is asked with no transaction open; each fix is one short transaction with its payment locked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.audit import Actor
from core.exceptions import PaymentProviderUnavailable
from payments.models import Payment, PaymentStatus, Refund, RefundStatus
from payments.providers import (
    TRANSACTION_PAYMENT,
    TRANSACTION_REFUND,
    Capability,
    PaymentProvider,
    ProviderTransaction,
    RefundResult,
    provider_for,
)
from payments.selectors.reconciliation import OurRows, reconcile_rows
from payments.services import payment_lock, payment_refund_apply, refund_counted
from payments.services.payment_sync import COLLECTED_STATUSES, observed_now, payment_sync_status

P = PaymentStatus
MISSING_HERE, MISSING_THERE = "missing_here", "missing_there"
STATUS_DIFFERS, AMOUNT_DIFFERS = "status_differs", "amount_differs"
SUBJECT_LABELS = {"payment": gettext_lazy("payment"), "refund": gettext_lazy("refund")}
# Our payments the provider must list: it took the money, or is taking it.
PROVIDER_HELD_STATUSES = {*COLLECTED_STATUSES, P.PROCESSING}
PROVIDER_HELD_REFUNDS = {RefundStatus.SUCCEEDED, RefundStatus.PENDING}


@dataclass(frozen=True)
class Drift:
    kind: str
    # "payment" or "refund".
    subject: str
    # The provider's id ("" when the provider does not list it).
    reference: str
    ours: str
    theirs: str
    payment_id: int | None = None
    refund_id: int | None = None
    transaction: ProviderTransaction | None = None

    def line(self) -> str:
        """One drift for the operator, in the active language; the kind and the reference stay machine words
        first on the line, so the lines can still be filtered by them."""
        # Translators: kind is a machine word (missing_here, amount_differs), subject "payment" or "refund".
        return (_("%(kind)s %(subject)s %(reference)s: ours %(ours)s; theirs %(theirs)s")
                % {"kind": self.kind, "subject": SUBJECT_LABELS.get(self.subject, self.subject),
                   "reference": self.reference or "-", "ours": self.ours, "theirs": self.theirs})


def _payment_word(payment: Payment) -> str:
    """A payment's status as a provider lists it: refunds do not undo that the money was collected."""
    return P.SUCCEEDED if payment.status in COLLECTED_STATUSES else payment.status


# Amounts stay integers in minor units and statuses machine words: the lines are compared with the
# provider's dashboard and grepped, not read as prose.
def _describe_payment(payment: Payment) -> str:
    return (_("payment #%(id)s %(status)s %(amount)s %(currency)s")
            % {"id": payment.pk, "status": payment.status, "amount": payment.amount,
               "currency": payment.currency.upper()})


def _describe_refund(refund: Refund) -> str:
    return (_("refund #%(id)s %(status)s %(amount)s %(currency)s")
            % {"id": refund.pk, "status": refund.status, "amount": refund.amount, "currency": refund.currency.upper()})


def _describe(found: ProviderTransaction) -> str:
    return f"{found.status or _('unknown')} {found.amount} {found.currency.upper()}"


@dataclass
class _Comparison:
    rail: PaymentProvider
    rows: OurRows
    since: datetime
    until: datetime

    def payment_for(self, found: ProviderTransaction) -> Payment | None:
        by_id = {payment.pk: payment for payment in self.rows.payments}
        if found.payment_id in by_id:
            return by_id[found.payment_id]
        for payment in sorted(self.rows.payments, key=lambda p: -p.pk):
            if payment.provider_charge_id == found.reference or self.rail.payment_reference(
                    payment=payment) == found.reference:
                return payment
            if found.invoice_id is not None and payment.invoice_id == found.invoice_id and payment.status != P.FAILED:
                return payment
        return None

    def payment_drifts(self, found: ProviderTransaction, payment: Payment) -> list[Drift]:
        drifts = []
        common = {"subject": "payment", "reference": found.reference, "ours": _describe_payment(payment),
                  "theirs": _describe(found), "payment_id": payment.pk, "transaction": found}
        if found.amount != payment.amount or found.currency.lower() != payment.currency.lower():
            drifts.append(Drift(kind=AMOUNT_DIFFERS, **common))
        if found.status and found.status != _payment_word(payment):
            drifts.append(Drift(kind=STATUS_DIFFERS, **common))
        return drifts

    def refund_drifts(self, found: ProviderTransaction, refund: Refund) -> list[Drift]:
        common = {"subject": "refund", "reference": found.reference,
                  "ours": _describe_refund(refund),
                  "theirs": _describe(found), "payment_id": refund.payment_id, "refund_id": refund.pk,
                  "transaction": found}
        drifts = []
        if found.amount != refund.amount:
            drifts.append(Drift(kind=AMOUNT_DIFFERS, **common))
        if found.status and found.status != refund.status:
            drifts.append(Drift(kind=STATUS_DIFFERS, **common))
        return drifts

    def in_window(self, row: Payment | Refund) -> bool:
        return self.since <= row.created_at < self.until


def _drifts(comparison: _Comparison, listed: list[ProviderTransaction]) -> list[Drift]:
    drifts: list[Drift] = []
    placed: dict[str, Payment] = {}
    for found in (t for t in listed if t.kind == TRANSACTION_PAYMENT):
        payment = comparison.payment_for(found)
        if payment is None:
            drifts.append(Drift(kind=MISSING_HERE, subject="payment", reference=found.reference, ours="-",
                                theirs=_describe(found), transaction=found))
            continue
        placed[found.reference] = payment
        drifts.extend(comparison.payment_drifts(found, payment))
    refunds = {refund.pk: refund for refund in comparison.rows.refunds}
    matched_refunds = set()
    by_reference = {refund.provider_refund_id: refund for refund in comparison.rows.refunds
                    if refund.provider_refund_id}
    for found in (t for t in listed if t.kind == TRANSACTION_REFUND):
        refund = by_reference.get(found.reference) or refunds.get(found.refund_id)
        if refund is None:
            payment = placed.get(found.refunded_reference)
            drifts.append(Drift(kind=MISSING_HERE, subject="refund", reference=found.reference, ours="-",
                                theirs=_describe(found), payment_id=payment.pk if payment else None,
                                transaction=found))
            continue
        matched_refunds.add(refund.pk)
        drifts.extend(comparison.refund_drifts(found, refund))
    matched_payments = {payment.pk for payment in placed.values()}
    drifts.extend(Drift(kind=MISSING_THERE, subject="payment", reference=comparison.rail.payment_reference(payment=p),
                        ours=_describe_payment(p), theirs="-", payment_id=p.pk)
                  for p in comparison.rows.payments
                  if p.pk not in matched_payments and p.status in PROVIDER_HELD_STATUSES and comparison.in_window(p))
    drifts.extend(Drift(kind=MISSING_THERE, subject="refund", reference="",
                        ours=_describe_refund(r), theirs="-", payment_id=r.payment_id,
                        refund_id=r.pk)
                  for r in comparison.rows.refunds
                  if r.pk not in matched_refunds and r.status in PROVIDER_HELD_REFUNDS and comparison.in_window(r))
    return drifts


def reconcile_rail(*, code: str) -> PaymentProvider:
    """The configured rail named `code` that can list its transactions (503 otherwise)."""
    rail = provider_for(code)
    if Capability.RECONCILIATION not in rail.capabilities:
        raise PaymentProviderUnavailable(_("The %(rail)s payment provider cannot list its transactions, so it "
                                           "cannot be reconciled.") % {"rail": rail.code},
                                         code="capability_unavailable",
                                         extra={"provider": rail.code, "capability": Capability.RECONCILIATION.value})
    return rail


def reconcile_compare(*, rail: PaymentProvider, since: datetime, until: datetime) -> list[Drift]:
    """Every drift between the rail's transactions in [since, until) and our rows (call: no transaction)."""
    listed = rail.transactions_list(since=since, until=until)
    rows = reconcile_rows(provider=rail.code, since=since, until=until, references={t.reference for t in listed},
                          payment_ids={t.payment_id for t in listed if t.payment_id is not None},
                          invoice_ids={t.invoice_id for t in listed if t.invoice_id is not None},
                          refund_ids={t.refund_id for t in listed if t.refund_id is not None})
    return _drifts(_Comparison(rail=rail, rows=rows, since=since, until=until), listed)


def _fix_payment_status(*, drift: Drift, actor: Actor) -> bool:
    with transaction.atomic():
        payment = payment_lock(payment_id=drift.payment_id)
        return payment_sync_status(payment=payment, to_status=drift.transaction.status, observed_at=observed_now(),
                                   actor=actor, reason=f"reconciliation: the provider lists {drift.reference} as "
                                                       f"{drift.transaction.status}",
                                   provider_data={"reconciliation": drift.reference}).applied


def _fix_refund_status(*, rail: PaymentProvider, drift: Drift, actor: Actor) -> bool:
    found = drift.transaction
    with transaction.atomic():
        payment = payment_lock(payment_id=drift.payment_id)
        refund = Refund.objects.get(pk=drift.refund_id)
        result = RefundResult(provider=rail.code, reference=found.reference, status=found.status,
                              provider_status=found.status, amount=found.amount, currency=found.currency, raw=found.raw)
        return rail.refund_apply(payment=payment, refund=refund, result=result, actor=actor,
                                 reason="reconciliation: the provider's refund status")


def _fix_missing_refund(*, drift: Drift, actor: Actor) -> bool:
    """A refund made at the provider (its dashboard) of a payment we know: counted as a succeeded refund."""
    found = drift.transaction
    with transaction.atomic():
        payment = payment_lock(payment_id=drift.payment_id)
        if (found.status != RefundStatus.SUCCEEDED or payment.status not in COLLECTED_STATUSES
                or found.amount > payment.amount - payment.amount_refunded):
            return False
        reason = f"refunded at {found.provider} ({found.reference}); found by reconciliation"
        refund = Refund(payment=payment, amount=found.amount, currency=payment.currency, status=RefundStatus.SUCCEEDED,
                        reason=reason, provider=found.provider, provider_refund_id=found.reference)
        refund.stamp(actor)
        refund.save()
        refund_counted(refund_id=refund.pk)
        payment_refund_apply(payment=payment, amount=found.amount, actor=actor, reason=reason,
                             provider_data={"refund": found.reference, "reconciliation": True})
        return True


def reconcile_fix(*, rail: PaymentProvider, drifts: list[Drift], actor: Actor) -> list[Drift]:
    """Apply the provider's word for each fixable drift (payments first, so a refund finds its payment
    collected); returns the drifts it fixed."""
    fixed = []
    for drift in sorted(drifts, key=lambda d: d.subject != "payment"):
        if drift.kind == STATUS_DIFFERS and drift.subject == "payment":
            done = _fix_payment_status(drift=drift, actor=actor)
        elif drift.kind == STATUS_DIFFERS:
            done = _fix_refund_status(rail=rail, drift=drift, actor=actor)
        elif drift.kind == MISSING_HERE and drift.subject == "refund" and drift.payment_id is not None:
            done = _fix_missing_refund(drift=drift, actor=actor)
        else:
            done = False
        if done:
            fixed.append(drift)
    return fixed
