"""Mirror a Lemon Squeezy subscription onto one of ours, exactly once and order-proof.

Lemon Squeezy bills the customer; our subscription only follows it. Every `subscription_*` message carries
the whole subscription, so any of them (not only `subscription_created`) creates the mirror the first time
and moves it afterwards. Lemon Squeezy's `updated_at` is the clock: a message whose subscription is not
newer than the state already applied (`ProviderSubscription.state_at`) is stale and changes nothing, so
whatever order and however many times the messages arrive, the mirror ends in the newest state.

Status moves go through `subscription_transition` (audited); a move the transition map refuses in one step
(paused -> past due) goes through active, each step audited. Our expired (canceled) mirror is final.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils.translation import gettext as _

from core.audit import Actor
from payments.models import ProviderEventStatus, ProviderPlanPrice, ProviderSubscription
from payments.providers.inbox import provider_events_requeue
from payments.providers.lemonsqueezy.models import LEMONSQUEEZY, LemonSqueezyEvent
from payments.providers.lemonsqueezy.payloads import LSSubscription
from payments.services import provider_account_reference_set
from payments.services.money_rollups import money_rollups_plan_move
from subscriptions.models import (
    LIVE_SUBSCRIPTION_STATUSES,
    Customer,
    Plan,
    Subscription,
    SubscriptionEventKind,
    SubscriptionStatus,
)
from subscriptions.periods import period_containing
from subscriptions.services import (
    ALLOWED_SUBSCRIPTION_TRANSITIONS,
    subscription_event_write,
    subscription_lock,
    subscription_transition,
)

S = SubscriptionStatus


class MirrorRefused(LookupError):
    """A message we cannot mirror yet (its plan, customer or subscription is not known to us): the event is
    marked failed with this message, and replaying it once the cause is fixed applies it."""


@dataclass(frozen=True)
class MirrorResult:
    applied: bool
    note: str = ""
    subscription: Subscription | None = None


def plan_for_variant(*, variant_id: str) -> Plan:
    price = (ProviderPlanPrice.objects.select_related("plan")
             .filter(provider=LEMONSQUEEZY, provider_price_id=variant_id).first())
    if price is None:
        raise MirrorRefused(_("Lemon Squeezy variant %(variant)s is not mapped to a plan (ProviderPlanPrice); map it, "
                              "then replay the event") % {"variant": variant_id or _("(none)")})
    return price.plan


def mirror_find(*, subscription_id: str = "", order_id: str = "") -> ProviderSubscription | None:
    mirrors = ProviderSubscription.objects.filter(provider=LEMONSQUEEZY)
    if subscription_id:
        return mirrors.filter(provider_subscription_id=subscription_id).first()
    return mirrors.filter(provider_order_id=order_id).first() if order_id else None


def _customer_for(*, ls: LSSubscription, custom_data: dict) -> Customer:
    """Who a new mirror belongs to: the customer already known by this Lemon Squeezy customer id, else the
    one our checkout named in its custom data."""
    customer = (Customer.objects.filter(provider_accounts__provider=LEMONSQUEEZY,
                                        provider_accounts__provider_customer_id=ls.customer_id).first()
                if ls.customer_id else None)
    named = str(custom_data.get("customer_id") or "")
    if customer is None and named.isdigit() and len(named) < 19:
        customer = Customer.objects.filter(pk=int(named)).first()
    if customer is None:
        raise MirrorRefused(_("no customer of ours for Lemon Squeezy customer %(customer)s (no checkout custom data "
                              "names one)") % {"customer": ls.customer_id or _("(none)")})
    return customer


def _anchor(ls: LSSubscription) -> datetime:
    return ls.trial_ends_at or ls.created_at or ls.updated_at


def _period(*, ls: LSSubscription, plan: Plan, anchor: datetime) -> tuple[datetime, datetime] | None:
    """The current period [start, end) as Lemon Squeezy bills it; None when the message says no end."""
    if ls.status == "on_trial" and ls.trial_ends_at:
        start, end = ls.created_at or ls.trial_ends_at - timedelta(days=1), ls.trial_ends_at
    else:
        end = (ls.ends_at if ls.status in ("cancelled", "expired") else None) or ls.renews_at or ls.ends_at
        if end is None:
            return None
        start = period_containing(anchor=anchor, interval=plan.interval, interval_count=plan.interval_count,
                                  instant=max(end - timedelta(seconds=1), anchor))[0]
    return (start, end) if start < end else (end - timedelta(days=1), end)


def _status_path(from_status: str, to_status: str) -> list[str]:
    """The moves from one status to another the transition map allows: directly, or through active."""
    if from_status == to_status:
        return []
    if to_status in ALLOWED_SUBSCRIPTION_TRANSITIONS[from_status]:
        return [to_status]
    if S.ACTIVE in ALLOWED_SUBSCRIPTION_TRANSITIONS[from_status] \
            and to_status in ALLOWED_SUBSCRIPTION_TRANSITIONS[S.ACTIVE]:
        return [S.ACTIVE, to_status]
    return []


def _mirror_create(*, ls: LSSubscription, plan: Plan, customer: Customer, actor: Actor,
                   reason: str) -> ProviderSubscription:
    """Our subscription for a Lemon Squeezy one seen for the first time (its customer is locked). It is
    created in the message's state; the customer may hold no other live subscription, since a customer has
    one (sub_one_live_per_customer): staff cancel ours first, then replay."""
    other = customer.subscriptions.filter(status__in=LIVE_SUBSCRIPTION_STATUSES).first()
    if other is not None:
        raise MirrorRefused(_("customer #%(customer)s already has live subscription #%(subscription)s; cancel it, "
                              "then replay the event of Lemon Squeezy subscription %(ls_subscription)s")
                            % {"customer": customer.pk, "subscription": other.pk, "ls_subscription": ls.id})
    anchor = _anchor(ls)
    start, end = _period(ls=ls, plan=plan, anchor=anchor) or (anchor, anchor + timedelta(days=1))
    status = ls.our_status
    subscription = Subscription.objects.create(
        customer=customer, plan=plan, status=status, billed_by=LEMONSQUEEZY, billing_cycle_anchor=anchor,
        current_period_start=start, current_period_end=end, trial_start=ls.created_at if ls.trial_ends_at else None,
        trial_end=ls.trial_ends_at, cancel_at_period_end=ls.cancel_scheduled,
        canceled_at=ls.updated_at if ls.cancel_scheduled or status == S.CANCELED else None,
        ended_at=(ls.ends_at or ls.updated_at) if status == S.CANCELED else None,
        paused_at=ls.updated_at if status == S.PAUSED else None)
    subscription_event_write(subscription=subscription, kind=SubscriptionEventKind.CREATED, actor=actor,
                             to_status=status, to_plan=plan, reason=reason,
                             data={"provider": LEMONSQUEEZY, "provider_subscription_id": ls.id})
    if ls.customer_id:
        provider_account_reference_set(customer=customer, provider=LEMONSQUEEZY, provider_customer_id=ls.customer_id)
    mirror = ProviderSubscription.objects.create(
        subscription=subscription, provider=LEMONSQUEEZY, provider_subscription_id=ls.id,
        provider_customer_id=ls.customer_id, provider_order_id=ls.order_id, provider_status=ls.status,
        provider_price_id=ls.variant_id, provider_usage_item_id=ls.item_id if ls.item_is_usage_based else "",
        state_at=ls.updated_at, anchor=anchor)
    parked_events_requeue(mirror=mirror)
    return mirror


def _plan_follow(*, subscription: Subscription, plan: Plan, actor: Actor, reason: str) -> None:
    if subscription.plan_id == plan.pk:
        return
    previous = subscription.plan
    subscription.plan = plan
    subscription.scheduled_plan = None
    with money_rollups_plan_move(subscription_ids=[subscription.pk]):
        subscription.save(update_fields=["plan", "scheduled_plan", "updated_at"])
    subscription_event_write(subscription=subscription, kind=SubscriptionEventKind.PLAN_CHANGED, actor=actor,
                             reason=reason, from_plan=previous, to_plan=plan, from_status=subscription.status,
                             to_status=subscription.status)


def _cancel_flag_follow(*, subscription: Subscription, scheduled: bool, at: datetime, actor: Actor,
                        reason: str) -> None:
    if subscription.status == S.CANCELED or subscription.cancel_at_period_end == scheduled:
        return
    subscription.cancel_at_period_end = scheduled
    subscription.canceled_at = at if scheduled else None
    subscription.save(update_fields=["cancel_at_period_end", "canceled_at", "updated_at"])
    kind = SubscriptionEventKind.CANCEL_SCHEDULED if scheduled else SubscriptionEventKind.CANCEL_UNSCHEDULED
    subscription_event_write(subscription=subscription, kind=kind, actor=actor, reason=reason,
                             from_status=subscription.status, to_status=subscription.status)


def _state_follow(*, mirror: ProviderSubscription, ls: LSSubscription, plan: Plan, actor: Actor,
                  reason: str) -> None:
    """Move a locked mirror to the (newer) state of `ls`."""
    subscription = subscription_lock(subscription_id=mirror.subscription_id)
    _plan_follow(subscription=subscription, plan=plan, actor=actor, reason=reason)
    period = _period(ls=ls, plan=plan, anchor=mirror.anchor)
    if period is not None and subscription.status != S.CANCELED:
        subscription.current_period_start, subscription.current_period_end = period
        subscription.save(update_fields=["current_period_start", "current_period_end", "updated_at"])
    # An expiry ends a scheduled cancellation by canceling (the transition clears the flag): no "withdrawn".
    if ls.our_status != S.CANCELED:
        _cancel_flag_follow(subscription=subscription, scheduled=ls.cancel_scheduled, at=ls.updated_at,
                            actor=actor, reason=reason)
    for step in _status_path(subscription.status, ls.our_status):
        subscription_transition(subscription=subscription, to_status=step, actor=actor, reason=reason,
                                now=ls.updated_at, data={"provider": LEMONSQUEEZY, "provider_status": ls.status})
    mirror.provider_status, mirror.provider_price_id, mirror.state_at = ls.status, ls.variant_id, ls.updated_at
    mirror.provider_usage_item_id = ls.item_id if ls.item_is_usage_based else ""
    mirror.provider_customer_id = mirror.provider_customer_id or ls.customer_id
    mirror.provider_order_id = mirror.provider_order_id or ls.order_id
    mirror.save(update_fields=["provider_status", "provider_price_id", "provider_usage_item_id", "state_at",
                               "provider_customer_id", "provider_order_id", "updated_at"])


def subscription_mirror_apply(*, ls: LSSubscription, custom_data: dict, actor: Actor,
                              reason: str) -> MirrorResult:
    """Create or move our mirror of `ls` (inside the event's transaction); stale messages change nothing."""
    if not ls.id or ls.updated_at is None or ls.our_status is None:
        raise MirrorRefused(_("Lemon Squeezy subscription %(subscription)s has no updated_at or an unknown status "
                              "%(status)r") % {"subscription": ls.id or _("(no id)"), "status": ls.status})
    plan = plan_for_variant(variant_id=ls.variant_id)
    mirror = mirror_find(subscription_id=ls.id)
    customer_id = mirror.subscription.customer_id if mirror else _customer_for(ls=ls, custom_data=custom_data).pk
    # The customer's row first: two first messages of one subscription, applied at once, create one mirror.
    customer = Customer.objects.select_for_update().get(pk=customer_id)
    mirror = mirror_find(subscription_id=ls.id)
    if mirror is None:
        mirror = _mirror_create(ls=ls, plan=plan, customer=customer, actor=actor, reason=reason)
        return MirrorResult(True, "", mirror.subscription)
    mirror = ProviderSubscription.objects.select_for_update().get(pk=mirror.pk)
    if ls.updated_at <= mirror.state_at:
        return MirrorResult(False, f"stale: state of {ls.updated_at.isoformat()} is not newer than "
                                   f"{mirror.state_at.isoformat()}", mirror.subscription)
    _state_follow(mirror=mirror, ls=ls, plan=plan, actor=actor, reason=reason)
    return MirrorResult(True, "", Subscription.objects.get(pk=mirror.subscription_id))


def parked_events_requeue(*, mirror: ProviderSubscription) -> int:
    """Events that failed because this mirror did not exist yet (a payment or an order that overtook the
    subscription's first message) go back to pending, with their apply job, once it does."""
    failed = LemonSqueezyEvent.objects.filter(status=ProviderEventStatus.FAILED)
    ls_id = mirror.provider_subscription_id
    # Lemon Squeezy writes ids in attributes as numbers; a string is matched too.
    by_subscription = failed.filter(Q(payload__data__attributes__subscription_id=ls_id)
                                    | Q(payload__data__attributes__subscription_id=int(ls_id) if ls_id.isdigit()
                                        and len(ls_id) < 19 else ls_id))
    by_order = failed.filter(payload__data__type="orders", payload__data__id=mirror.provider_order_id) \
        if mirror.provider_order_id else failed.none()
    pks = set(by_subscription.values_list("pk", flat=True)) | set(by_order.values_list("pk", flat=True))
    return provider_events_requeue(model=LemonSqueezyEvent, event_pks=list(pks))
