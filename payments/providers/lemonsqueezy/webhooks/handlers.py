"""One handler per Lemon Squeezy event name. Each reads `event.payload["data"]` (a JSON:API resource) into
this package's dataclasses and hands it to the mirror (subscriptions) or the money recorder (orders and
subscription invoices), which lock what they change and say whether anything changed and why not.

Every handler is safe to run again and in any order: the mirror refuses states that are not newer, the
money recorder keys everything by period and recorded totals. A payment or order that overtakes its
subscription's first message fails with MirrorRefused; the mirror puts it back to pending once it exists.

Events handled (subscribe the store's webhook to these): subscription_created, subscription_updated,
subscription_cancelled, subscription_resumed, subscription_expired, subscription_paused,
subscription_unpaused, subscription_plan_changed, subscription_payment_success,
subscription_payment_failed, subscription_payment_recovered, subscription_payment_refunded,
order_created, order_refunded.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.translation import gettext as _

from core.audit import Actor
from payments.providers.lemonsqueezy.mirror import (
    MirrorRefused,
    mirror_find,
    plan_for_variant,
    subscription_mirror_apply,
)
from payments.providers.lemonsqueezy.models import LemonSqueezyEvent
from payments.providers.lemonsqueezy.money import money_record
from payments.providers.lemonsqueezy.payloads import (
    TYPE_ORDER,
    TYPE_SUBSCRIPTION,
    TYPE_SUBSCRIPTION_INVOICE,
    LSMoney,
    LSSubscription,
)


@dataclass(frozen=True)
class Outcome:
    applied: bool
    note: str = ""


def _reason(event: LemonSqueezyEvent) -> str:
    return f"{event.type} ({event.event_id})"[:500]


def _resource(event: LemonSqueezyEvent, expected_type: str) -> dict:
    data = event.payload["data"]
    if data.get("type") != expected_type:
        raise MirrorRefused(_("%(event_type)s carries a %(found)r object, not %(expected)r")
                            % {"event_type": event.type, "found": data.get("type"), "expected": expected_type})
    return data


def handle_subscription(*, event: LemonSqueezyEvent, actor: Actor) -> Outcome:
    """subscription_*: create or move our mirror to the subscription's state, if it is newer."""
    ls = LSSubscription.from_resource(_resource(event, TYPE_SUBSCRIPTION))
    custom_data = event.payload.get("meta", {}).get("custom_data") or {}
    result = subscription_mirror_apply(ls=ls, custom_data=custom_data, actor=actor, reason=_reason(event))
    return Outcome(result.applied, result.note)


def handle_subscription_payment(*, event: LemonSqueezyEvent, actor: Actor) -> Outcome:
    """subscription_payment_*: the period's paid invoice, payment, credits and refunds."""
    money = LSMoney.from_resource(_resource(event, TYPE_SUBSCRIPTION_INVOICE))
    mirror = mirror_find(subscription_id=money.subscription_id)
    if mirror is None:
        raise MirrorRefused(_("Lemon Squeezy subscription %(subscription)s is not mirrored yet; this event is applied "
                              "again once it is") % {"subscription": money.subscription_id or _("(none)")})
    result = money_record(mirror=mirror, money=money, actor=actor, reason=_reason(event))
    return Outcome(result.applied, result.note)


def handle_order(*, event: LemonSqueezyEvent, actor: Actor) -> Outcome:
    """order_created / order_refunded: an order of a subscription plan is its first payment."""
    money = LSMoney.from_resource(_resource(event, TYPE_ORDER))
    mirror = mirror_find(order_id=money.id)
    if mirror is None:
        try:
            plan_for_variant(variant_id=money.variant_id)
        except MirrorRefused:
            return Outcome(False, _("order %(order)s is not for a plan of ours (variant %(variant)s)")
                           % {"order": money.id, "variant": money.variant_id})
        raise MirrorRefused(_("the subscription of Lemon Squeezy order %(order)s is not mirrored yet; this event is "
                              "applied again once it is") % {"order": money.id})
    result = money_record(mirror=mirror, money=money, actor=actor, reason=_reason(event))
    return Outcome(result.applied, result.note)


SUBSCRIPTION_EVENTS = ("subscription_created", "subscription_updated", "subscription_cancelled",
                       "subscription_resumed", "subscription_expired", "subscription_paused",
                       "subscription_unpaused", "subscription_plan_changed")
PAYMENT_EVENTS = ("subscription_payment_success", "subscription_payment_failed", "subscription_payment_recovered",
                  "subscription_payment_refunded")
ORDER_EVENTS = ("order_created", "order_refunded")

HANDLERS: dict[str, Callable[..., Outcome]] = {
    **dict.fromkeys(SUBSCRIPTION_EVENTS, handle_subscription),
    **dict.fromkeys(PAYMENT_EVENTS, handle_subscription_payment),
    **dict.fromkeys(ORDER_EVENTS, handle_order),
}
