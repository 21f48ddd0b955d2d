"""PayPal's objects as frozen dataclasses, read from API answers and webhook resources alike.

Amounts: PayPal writes money as a decimal string in major units ("9.99", "1000" for JPY); we keep minor
units, converted here and nowhere else. Statuses: PayPal's words stay in `status`; the maps below say
what they mean for our payments and refunds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext as _

from core.money import to_major, to_minor
from core.safe_input import datetime_problem

# A capture's status as one of our PaymentStatus values. REFUNDED and PARTIALLY_REFUNDED captures were
# collected first: the refunds themselves are counted from refund objects, not from this word.
CAPTURE_STATUS = {"COMPLETED": "succeeded", "PENDING": "processing", "DECLINED": "failed", "FAILED": "failed",
                  "REFUNDED": "succeeded", "PARTIALLY_REFUNDED": "succeeded"}
# An order with no capture yet: the payer has not approved it (or approved and it awaits our capture).
ORDER_STATUS = {"CREATED": "", "SAVED": "", "APPROVED": "", "PAYER_ACTION_REQUIRED": "", "VOIDED": "canceled",
                "COMPLETED": "succeeded"}
REFUND_STATUS = {"COMPLETED": "succeeded", "PENDING": "pending", "FAILED": "failed", "CANCELLED": "canceled"}


def amount_to_paypal(amount: int, currency: str) -> str:
    """Minor units as PayPal's value string: 999 USD -> "9.99", 1000 JPY -> "1000"."""
    return f"{to_major(amount, currency):f}"


def amount_from_paypal(value: object, currency: str) -> int:
    """PayPal's value string in minor units; ValueError for anything that is not an exact amount."""
    try:
        return to_minor(Decimal(str(value)), currency)
    except (InvalidOperation, TypeError) as exc:
        raise ValueError(_("%(value)r is not an amount") % {"value": value}) from exc


def _money(payload: dict, key: str = "amount") -> tuple[int, str]:
    money = payload.get(key) or {}
    currency = str(money.get("currency_code") or "").upper()
    if not currency:
        return 0, ""
    return amount_from_paypal(money.get("value"), currency), currency


def _link(payload: dict, *rels: str) -> str:
    for link in payload.get("links") or []:
        if isinstance(link, dict) and link.get("rel") in rels:
            return str(link.get("href") or "")
    return ""


def parse_time(value: object) -> datetime | None:
    """PayPal's RFC 3339 time as an aware datetime; None when absent or not one PostgreSQL can store."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return None if datetime_problem(parsed) else parsed


@dataclass(frozen=True)
class PayPalCapture:
    id: str
    status: str
    amount: int
    currency: str
    # The order the capture belongs to (supplementary_data.related_ids.order_id); our payment's reference.
    order_id: str
    # Ours, set on the purchase unit: the payment's id, so a webhook finds its row without the order id.
    custom_id: str
    invoice_id: str
    updated_at: datetime | None
    status_reason: str = ""

    @classmethod
    def from_payload(cls, payload: dict) -> PayPalCapture:
        amount, currency = _money(payload)
        related = ((payload.get("supplementary_data") or {}).get("related_ids") or {})
        reason = (payload.get("status_details") or {}).get("reason") or ""
        return cls(id=str(payload.get("id") or ""), status=str(payload.get("status") or ""), amount=amount,
                   currency=currency, order_id=str(related.get("order_id") or ""),
                   custom_id=str(payload.get("custom_id") or ""), invoice_id=str(payload.get("invoice_id") or ""),
                   updated_at=parse_time(payload.get("update_time")) or parse_time(payload.get("create_time")),
                   status_reason=str(reason))


@dataclass(frozen=True)
class PayPalOrder:
    id: str
    status: str
    # Where the payer approves the order ("" once approved or for a vaulted charge).
    approve_url: str
    amount: int
    currency: str
    custom_id: str
    captures: tuple[PayPalCapture, ...]
    # The saved wallet's id when the order vaulted one (store_in_vault) or was paid with one.
    vault_id: str
    customer_reference: str

    @classmethod
    def from_payload(cls, payload: dict) -> PayPalOrder:
        units = [unit for unit in payload.get("purchase_units") or [] if isinstance(unit, dict)]
        unit = units[0] if units else {}
        amount, currency = _money(unit)
        order_id = str(payload.get("id") or "")
        captures = []
        for capture in ((unit.get("payments") or {}).get("captures") or []):
            if isinstance(capture, dict):
                related = {"supplementary_data": {"related_ids": {"order_id": order_id}}}
                captures.append(PayPalCapture.from_payload({**related, **capture}))
        vault = (((payload.get("payment_source") or {}).get("paypal") or {}).get("attributes") or {}).get("vault")
        vault = vault if isinstance(vault, dict) else {}
        return cls(id=order_id, status=str(payload.get("status") or ""),
                   approve_url=_link(payload, "payer-action", "approve"), amount=amount, currency=currency,
                   custom_id=str(unit.get("custom_id") or ""), captures=tuple(captures),
                   vault_id=str(vault.get("id") or ""),
                   customer_reference=str((vault.get("customer") or {}).get("id") or ""))

    @property
    def capture(self) -> PayPalCapture | None:
        """The order's capture (we create one purchase unit and capture it once)."""
        return self.captures[-1] if self.captures else None

    @property
    def payment_status(self) -> str:
        """What the order means for our payment: its capture's word, else the order's."""
        if self.capture is not None:
            return CAPTURE_STATUS.get(self.capture.status, "")
        return ORDER_STATUS.get(self.status, "")


@dataclass(frozen=True)
class PayPalRefund:
    id: str
    status: str
    amount: int
    currency: str
    # The capture refunded (from the refund's "up" link).
    capture_id: str
    # Ours: the Refund row's id, echoed in the refund's webhooks.
    custom_id: str
    updated_at: datetime | None

    @classmethod
    def from_payload(cls, payload: dict) -> PayPalRefund:
        amount, currency = _money(payload)
        up = _link(payload, "up")
        capture_id = up.rstrip("/").rsplit("/", 1)[-1] if "/captures/" in up else ""
        return cls(id=str(payload.get("id") or ""), status=str(payload.get("status") or ""), amount=amount,
                   currency=currency, capture_id=capture_id, custom_id=str(payload.get("custom_id") or ""),
                   updated_at=parse_time(payload.get("update_time")) or parse_time(payload.get("create_time")))

    @property
    def refund_status(self) -> str:
        return REFUND_STATUS.get(self.status, "")


@dataclass(frozen=True)
class PayPalSetupToken:
    id: str
    status: str
    approve_url: str
    customer_reference: str

    @classmethod
    def from_payload(cls, payload: dict) -> PayPalSetupToken:
        return cls(id=str(payload.get("id") or ""), status=str(payload.get("status") or ""),
                   approve_url=_link(payload, "approve"),
                   customer_reference=str((payload.get("customer") or {}).get("id") or ""))


@dataclass(frozen=True)
class PayPalPaymentToken:
    # The vault id off-session orders are paid with.
    id: str
    customer_reference: str

    @classmethod
    def from_payload(cls, payload: dict) -> PayPalPaymentToken:
        return cls(id=str(payload.get("id") or ""),
                   customer_reference=str((payload.get("customer") or {}).get("id") or ""))


# Transaction Search event codes: T00xx are payments received, T11xx reversals (refunds) of them.
TRANSACTION_KIND = {"T0006": "capture", "T0003": "capture", "T0004": "capture", "T0005": "capture",
                    "T0007": "capture", "T1107": "refund", "T1106": "refund"}
# Transaction Search statuses (S success, P pending, D denied, V reversed: a payment refunded in full,
# which was collected first) in our PaymentStatus and RefundStatus words.
TRANSACTION_PAYMENT_STATUS = {"S": "succeeded", "P": "processing", "D": "failed", "V": "succeeded"}
TRANSACTION_REFUND_STATUS = {"S": "succeeded", "P": "pending", "D": "failed"}


@dataclass(frozen=True)
class PayPalTransaction:
    """One line of Transaction Search, what reconciliation compares with our rows."""
    id: str
    # "capture" or "refund" (other kinds are not ours and are skipped).
    kind: str
    # PayPal's one-letter status (see the maps above).
    status: str
    # Positive minor units; PayPal reports a refund negative.
    amount: int
    currency: str
    # For a refund: the capture it refunds.
    reference_id: str
    custom_id: str
    at: datetime | None

    @classmethod
    def from_payload(cls, payload: dict) -> PayPalTransaction:
        info = payload.get("transaction_info") or {}
        amount, currency = _money(info, "transaction_amount")
        return cls(id=str(info.get("transaction_id") or ""),
                   kind=TRANSACTION_KIND.get(str(info.get("transaction_event_code") or ""), ""),
                   status=str(info.get("transaction_status") or ""),
                   amount=abs(amount), currency=currency, reference_id=str(info.get("paypal_reference_id") or ""),
                   custom_id=str(info.get("custom_field") or ""),
                   at=(parse_time(info.get("transaction_updated_date"))
                       or parse_time(info.get("transaction_initiation_date"))))
