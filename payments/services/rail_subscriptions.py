"""Cancel, pause, resume and plan change as the API and the admin ask them, for every subscription: ours
go through our own services; one a merchant-of-record rail bills (`Subscription.billed_by`) is changed at
that rail through the provider contract (`subscription_change_request`), and the rail's webhook then moves
our mirror. Nothing of ours is written before the webhook: the provider's state stays the one truth.

The rail is called with no transaction open and no row locked."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import Actor
from core.exceptions import IllegalTransition, InvalidOperation
from payments.billing.resume import subscription_resume_billed
from payments.models import ProviderPlanPrice, ProviderSubscription
from payments.providers import (
    CHANGE_CANCEL,
    CHANGE_PAUSE,
    CHANGE_PLAN,
    CHANGE_RESUME,
    SubscriptionChange,
    provider_for,
)
from payments.services.subscription_flows import PlanChange, subscription_change_plan
from subscriptions.models import Plan, Subscription, SubscriptionStatus
from subscriptions.services import subscription_cancel, subscription_pause


def _rail_change(*, subscription: Subscription, action: str, at_period_end: bool = True,
                 price_reference: str = "") -> Subscription:
    if subscription.status == SubscriptionStatus.CANCELED:
        raise IllegalTransition(_("The subscription is already canceled."), code="already_canceled")
    rail = provider_for(subscription.billed_by)
    reference = (ProviderSubscription.objects.filter(subscription=subscription)
                 .values_list("provider_subscription_id", flat=True).first())
    if not reference:
        raise IllegalTransition(_("The provider's id of this subscription is not known."), code="billed_elsewhere")
    rail.subscription_change_request(SubscriptionChange(reference=reference, action=action,
                                                        at_period_end=at_period_end, price_reference=price_reference))
    return Subscription.objects.get(pk=subscription.pk)


def subscription_cancel_requested(*, subscription: Subscription, actor: Actor, at_period_end: bool = False,
                                  reason: str = "") -> Subscription:
    if subscription.is_mirrored:
        return _rail_change(subscription=subscription, action=CHANGE_CANCEL, at_period_end=at_period_end)
    return subscription_cancel(subscription=subscription, actor=actor, at_period_end=at_period_end, reason=reason)


def subscription_pause_requested(*, subscription: Subscription, actor: Actor, reason: str = "") -> Subscription:
    if subscription.is_mirrored:
        return _rail_change(subscription=subscription, action=CHANGE_PAUSE)
    return subscription_pause(subscription=subscription, actor=actor, reason=reason)


def subscription_resume_requested(*, subscription: Subscription, actor: Actor, reason: str = "") -> Subscription:
    if subscription.is_mirrored:
        if subscription.status != SubscriptionStatus.PAUSED and not subscription.cancel_at_period_end:
            raise IllegalTransition(_("A %(status)s subscription has nothing to resume.")
                                    % {"status": subscription.status},
                                    code="nothing_to_resume")
        return _rail_change(subscription=subscription, action=CHANGE_RESUME)
    subscription_resume_billed(subscription=subscription, actor=actor, reason=reason)
    return Subscription.objects.get(pk=subscription.pk)


def subscription_change_plan_requested(*, subscription: Subscription, new_plan: Plan, actor: Actor,
                                       reason: str = "", now: datetime | None = None) -> PlanChange:
    if not subscription.is_mirrored:
        return subscription_change_plan(subscription=subscription, new_plan=new_plan, actor=actor, reason=reason,
                                         now=now)
    if new_plan.pk == subscription.plan_id:
        raise IllegalTransition(_("The subscription is already on this plan."), code="same_plan")
    price = ProviderPlanPrice.objects.filter(plan=new_plan, provider=subscription.billed_by).first()
    if price is None:
        raise InvalidOperation(_("Plan %(plan)s is not sold through %(rail)s.")
                               % {"plan": new_plan.code, "rail": subscription.billed_by},
                               code="plan_not_on_rail", extra={"fields": {"plan": [_("Not sold through this rail.")]}})
    changed = _rail_change(subscription=subscription, action=CHANGE_PLAN, price_reference=price.provider_price_id)
    # The provider prorates and bills the change itself; its webhook moves our plan.
    return PlanChange(subscription=changed, effective="immediate", effective_at=now or timezone.now(), invoice=None,
                      proration_amount=0)
