"""Lemon Squeezy's JSON:API objects as frozen dataclasses, read from API answers and webhook bodies alike
(a webhook's `data` is the same resource object the API returns: `type`, `id`, `attributes`).

Amounts: Lemon Squeezy already writes money as integer minor units (`"total": 999` is $9.99), which is what
we keep; currencies are ISO 4217 codes. Statuses: its words stay in `status`; the maps below say what they
mean for our subscriptions, payments and refunds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from core.safe_input import datetime_problem
from subscriptions.models import SubscriptionStatus

S = SubscriptionStatus

# A Lemon Squeezy subscription status as ours. "cancelled" is Lemon Squeezy's grace period: the customer
# keeps the subscription until `ends_at`, which is our cancel-at-period-end (see `cancel_scheduled`);
# "unpaid" is past due with the retries used up, still ours to show as past due until it expires.
SUBSCRIPTION_STATUS = {"on_trial": S.TRIALING, "active": S.ACTIVE, "paused": S.PAUSED, "past_due": S.PAST_DUE,
                       "unpaid": S.PAST_DUE, "cancelled": S.ACTIVE, "expired": S.CANCELED}
# Orders and subscription invoices whose money was taken (refunded ones were paid first).
PAID_STATUSES = frozenset({"paid", "refunded", "partial_refund"})
# The JSON:API resource types this rail reads.
TYPE_SUBSCRIPTION = "subscriptions"
TYPE_ORDER = "orders"
TYPE_SUBSCRIPTION_INVOICE = "subscription-invoices"


def parse_time(value: object) -> datetime | None:
    """Lemon Squeezy's ISO 8601 time ("2026-01-01T00:00:00.000000Z") as an aware datetime; None when absent
    or not one PostgreSQL can store."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return None if datetime_problem(parsed) else parsed


def _id(value: object) -> str:
    """An id as Lemon Squeezy writes it (numbers in attributes, strings in `id`) as our string."""
    if isinstance(value, bool) or value is None:
        return ""
    return str(value)[:255] if isinstance(value, int | str) else ""


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**62 else 0


def _attributes(resource: dict) -> dict:
    attributes = resource.get("attributes") if isinstance(resource, dict) else None
    return attributes if isinstance(attributes, dict) else {}


@dataclass(frozen=True)
class LSSubscription:
    id: str
    status: str
    customer_id: str
    order_id: str
    product_id: str
    variant_id: str
    # Lemon Squeezy's updated_at: the clock that orders its messages about this subscription.
    updated_at: datetime | None
    created_at: datetime | None
    renews_at: datetime | None
    ends_at: datetime | None
    trial_ends_at: datetime | None
    # The subscription item usage records are reported against (usage-priced variants).
    item_id: str
    item_is_usage_based: bool
    user_email: str = ""

    @classmethod
    def from_resource(cls, resource: dict) -> LSSubscription:
        attributes = _attributes(resource)
        item = attributes.get("first_subscription_item")
        item = item if isinstance(item, dict) else {}
        return cls(id=_id(resource.get("id")), status=str(attributes.get("status") or "")[:32],
                   customer_id=_id(attributes.get("customer_id")), order_id=_id(attributes.get("order_id")),
                   product_id=_id(attributes.get("product_id")), variant_id=_id(attributes.get("variant_id")),
                   updated_at=parse_time(attributes.get("updated_at")),
                   created_at=parse_time(attributes.get("created_at")),
                   renews_at=parse_time(attributes.get("renews_at")), ends_at=parse_time(attributes.get("ends_at")),
                   trial_ends_at=parse_time(attributes.get("trial_ends_at")), item_id=_id(item.get("id")),
                   item_is_usage_based=item.get("is_usage_based") is True,
                   user_email=str(attributes.get("user_email") or "")[:254])

    @property
    def our_status(self) -> str | None:
        """Our status for Lemon Squeezy's, or None for a word we do not know (the event is then refused)."""
        return SUBSCRIPTION_STATUS.get(self.status)

    @property
    def cancel_scheduled(self) -> bool:
        """Cancelled in Lemon Squeezy but running until `ends_at`: our cancel at period end."""
        return self.status == "cancelled"


@dataclass(frozen=True)
class LSMoney:
    """An order or a subscription invoice: money Lemon Squeezy took (or failed to take) from the customer."""

    # TYPE_ORDER or TYPE_SUBSCRIPTION_INVOICE.
    type: str
    id: str
    status: str
    # Minor units, tax included: what the customer paid the merchant of record.
    total: int
    currency: str
    # How much of `total` was refunded (an order's refunded_amount, else all of it once refunded).
    refunded_amount: int
    created_at: datetime | None
    updated_at: datetime | None
    customer_id: str
    # A subscription invoice's subscription; "" for an order (its subscription names the order instead).
    subscription_id: str
    # An order's first item's variant (what was bought); "" for a subscription invoice.
    variant_id: str
    billing_reason: str = ""

    @classmethod
    def from_resource(cls, resource: dict) -> LSMoney:
        attributes = _attributes(resource)
        total, status = _int(attributes.get("total")), str(attributes.get("status") or "")[:32]
        refunded = _int(attributes.get("refunded_amount"))
        if not refunded and (attributes.get("refunded") is True or status == "refunded"):
            refunded = total
        item = attributes.get("first_order_item")
        item = item if isinstance(item, dict) else {}
        return cls(type=str(resource.get("type") or ""), id=_id(resource.get("id")), status=status, total=total,
                   currency=str(attributes.get("currency") or "").upper()[:3], refunded_amount=min(refunded, total),
                   created_at=parse_time(attributes.get("created_at")),
                   updated_at=parse_time(attributes.get("updated_at")),
                   customer_id=_id(attributes.get("customer_id")),
                   subscription_id=_id(attributes.get("subscription_id")), variant_id=_id(item.get("variant_id")),
                   billing_reason=str(attributes.get("billing_reason") or "")[:32])

    @property
    def is_paid(self) -> bool:
        return self.status in PAID_STATUSES

    @property
    def reference(self) -> str:
        """A name for this money that says which kind of object it is ("order-1", "subscription-invoice-7")."""
        return f"{'order' if self.type == TYPE_ORDER else 'subscription-invoice'}-{self.id}"


@dataclass(frozen=True)
class LSCheckout:
    id: str
    url: str
    expires_at: datetime | None

    @classmethod
    def from_resource(cls, resource: dict) -> LSCheckout:
        attributes = _attributes(resource)
        return cls(id=_id(resource.get("id")), url=str(attributes.get("url") or ""),
                   expires_at=parse_time(attributes.get("expires_at")))


@dataclass(frozen=True)
class LSUsageRecord:
    id: str
    subscription_item_id: str
    quantity: int
    action: str

    @classmethod
    def from_resource(cls, resource: dict) -> LSUsageRecord:
        attributes = _attributes(resource)
        return cls(id=_id(resource.get("id")), subscription_item_id=_id(attributes.get("subscription_item_id")),
                   quantity=_int(attributes.get("quantity")), action=str(attributes.get("action") or ""))
