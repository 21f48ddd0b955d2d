"""`seed --demo` customers on Lemon Squeezy: the mirror and money services fed with what Lemon Squeezy's
webhooks would have carried (ids prefixed "demo-", never sent anywhere), so the demo shows mirrored
subscriptions, their paid periods and credits exactly as the real rail records them."""

from datetime import datetime

from core.audit import Actor
from payments.models import ProviderPlanPrice
from payments.providers.lemonsqueezy.mirror import mirror_find, subscription_mirror_apply
from payments.providers.lemonsqueezy.models import LEMONSQUEEZY
from payments.providers.lemonsqueezy.money import money_record
from payments.providers.lemonsqueezy.payloads import TYPE_SUBSCRIPTION_INVOICE, LSMoney, LSSubscription
from subscriptions.models import Customer, Plan
from subscriptions.periods import period_boundary


def demo_mirror_build(*, customer: Customer, plan: Plan, started_at: datetime, as_of: datetime,
                      actor: Actor) -> None:
    price, _ = ProviderPlanPrice.objects.get_or_create(
        plan=plan, provider=LEMONSQUEEZY, defaults={"provider_price_id": f"demo-{plan.code}",
                                                    "provider_product_id": "demo"})
    boundaries = [started_at]
    while True:
        following = period_boundary(anchor=started_at, interval=plan.interval, interval_count=plan.interval_count,
                                    periods=len(boundaries))
        boundaries.append(following)
        if following > as_of:
            break
    ls = LSSubscription(id=f"demo-{customer.pk}", status="active", customer_id=f"demo-{customer.pk}",
                        order_id=f"demo-order-{customer.pk}", product_id="demo", variant_id=price.provider_price_id,
                        updated_at=as_of, created_at=started_at, renews_at=boundaries[-1], ends_at=None,
                        trial_ends_at=None, item_id="", item_is_usage_based=False, user_email=customer.email)
    subscription_mirror_apply(ls=ls, custom_data={"customer_id": str(customer.pk)}, actor=actor,
                              reason="seed --demo (Lemon Squeezy)")
    mirror = mirror_find(subscription_id=ls.id)
    for number, start in enumerate(boundaries[:-1], start=1):
        money = LSMoney(type=TYPE_SUBSCRIPTION_INVOICE, id=f"demo-{customer.pk}-{number}", status="paid",
                        total=plan.amount, currency=plan.currency, refunded_amount=0, created_at=start,
                        updated_at=start, customer_id=ls.customer_id, subscription_id=ls.id, variant_id="",
                        billing_reason="initial" if number == 1 else "renewal")
        money_record(mirror=mirror, money=money, actor=actor, reason="seed --demo (Lemon Squeezy)")
