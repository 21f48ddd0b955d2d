"""Demo customers with a believable past, written through the services with `now=` in the past.

Each customer is one deterministic story (its own `random.Random`, seeded by its number) built in one
transaction: a run that stops half-way leaves whole customers only, and the next run carries on with
the missing ones. A customer that exists (by external id) is skipped, which makes the seed idempotent.

Audit rows keep `created_at` = when the seed wrote them (that is the truth); the business times
(periods, issued/paid/succeeded at, grant effective/expiry, usage occurred at) lie in the past.
"""

import random
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.authtoken.models import Token

from core.audit import Actor
from credits.services import credit_grants_expire
from payments.billing.common import RUN_ACTOR
from payments.billing.decision import next_period
from payments.billing.lines import catalog_load
from payments.billing.renewals import RENEWALS, TRIALS, renewal_batch
from payments.models import (
    BillingReason,
    Invoice,
    InvoiceStatus,
    PaymentMethod,
)
from payments.providers import Capability, PaymentProvider, providers_installed
from payments.seeding.activity import CREDIT_EVENTS, activity, usage_bulk
from payments.seeding.catalog import Catalog
from payments.seeding.data import DEMO_COMPANY_NAMES
from payments.seeding.story import (
    CARD,
    Story,
    card_declined,
    card_rail,
    collect,
    invoice_issued_in_error,
    plan_tier,
    refund_one,
)
from payments.services import (
    invoice_lock,
    invoice_transition,
    invoice_void,
    provider_account_default_payment_method_set,
    provider_account_reference_set,
    subscription_change_plan,
    subscription_start,
)
from subscriptions.models import Customer, Plan, Subscription, SubscriptionStatus
from subscriptions.periods import add_months
from subscriptions.services import (
    customer_create,
    subscription_cancel,
    subscription_pause,
)

# Fixed so every run (and every machine) tells the same stories.
DEMO_RANDOM_SEED = 20260101

S = SubscriptionStatus
M = PaymentMethod
_EXPIRY = Actor.system("credit-expiry")

# The first six customers cover every subscription status (and, between them, every payment method
# and invoice status), so even `--demo 6` shows the whole back office: (status, plan, payment method).
_FORCED_STORIES = [
    (S.ACTIVE, "pro", CARD),
    (S.TRIALING, "basic", CARD),
    (S.PAST_DUE, "basic", M.BANK_TRANSFER),
    (S.PAUSED, "pro", M.CHECK),
    (S.CANCELED, "basic", M.CASH),
    (S.INCOMPLETE, "enterprise", CARD),
]
_STATUS_WEIGHTS = {S.ACTIVE: 50, S.TRIALING: 10, S.PAST_DUE: 8, S.PAUSED: 6, S.CANCELED: 16, S.INCOMPLETE: 10}
_PLAN_WEIGHTS = {"free": 22, "basic": 30, "basic-yearly": 6, "pro": 22, "pro-yearly": 5, "enterprise": 10,
                 "enterprise-yearly": 5}
_METHOD_WEIGHTS = {CARD: 55, M.BANK_TRANSFER: 20, M.CHECK: 10, M.CASH: 15}
_UPGRADES = {"basic": "pro", "pro": "enterprise"}
_DOWNGRADES = {"pro": "basic", "enterprise": "pro"}


def demo_username(index: int) -> str:
    return f"demo-customer-{index:03d}"


# ---------------------------------------------------------------------------------------- lifecycle


def _start_established(story: Story, plan: Plan, *, months_back: int, with_trial: bool) -> Subscription:
    rng = story.rng
    start = add_months(story.as_of, -months_back) - timedelta(days=rng.randint(0, 20), hours=rng.randint(0, 23),
                                                              minutes=rng.randint(0, 59))
    story.life_start = start
    # The engine ends a paid trial without a saved card in cancellation (as it should), so only card
    # customers get a trial that has run out by now.
    subscription, invoice = subscription_start(customer=story.customer, plan=plan, actor=story.me, now=start,
                                               with_trial=with_trial and story.method == CARD)
    if invoice is not None:
        collect(story, invoice, start + timedelta(minutes=rng.randint(1, 90)))
    return Subscription.objects.get(pk=subscription.pk)


def _renew(subscription: Subscription, *, at: datetime) -> tuple[Subscription, Invoice | None]:
    """The billing engine's renewal steps with the clock at `at` (a period boundary): the trial converts or
    the period renews, its invoice is issued (with any usage in arrears) and the plan's credits refilled.
    Collection stays with the story, which decides how this customer pays. Customers built earlier are
    never due here: their periods already run past `at`."""
    catalog = catalog_load()
    for step in (TRIALS, RENEWALS):
        after_pk = 0
        while (counts := renewal_batch(step=step, as_of=at, batch_size=100, actor=RUN_ACTOR, catalog=catalog,
                                       after_pk=after_pk)) is not None:
            after_pk = counts.last_pk
    subscription = Subscription.objects.select_related("plan", "customer").get(pk=subscription.pk)
    invoice = (Invoice.objects.filter(subscription=subscription, period_start=at,
                                      billing_reason=BillingReason.SUBSCRIPTION_CYCLE).order_by("-id").first())
    return subscription, invoice


def _live_until(story: Story, subscription: Subscription, *, until: datetime,
                last_outcome: str = "paid") -> tuple[Subscription, Invoice | None]:
    """Live through every period boundary up to `until`: the period's activity, then the renewal and
    its collection. The last renewal's invoice is paid, declined ("failed") or left open ("unpaid")."""
    last_invoice = None
    while subscription.current_period_end <= until:
        plan = subscription.plan
        activity(story, subscription.current_period_start, subscription.current_period_end, tier=plan_tier(plan))
        boundary = subscription.current_period_end
        _, next_end = next_period(subscription=subscription, plan=plan)
        outcome = last_outcome if next_end > until else "paid"
        subscription, invoice = _renew(subscription, at=boundary)
        collected_at = boundary + timedelta(minutes=story.rng.randint(1, 240))
        if invoice is not None and outcome == "paid":
            collect(story, invoice, collected_at)
        elif invoice is not None and outcome == "failed":
            card_declined(story, invoice, collected_at)
        last_invoice = invoice
    activity(story, subscription.current_period_start, until, tier=plan_tier(subscription.plan))
    return subscription, last_invoice


def _story_active(story: Story, plan: Plan, forced: bool) -> None:
    rng = story.rng
    subscription = _start_established(story, plan, months_back=3 if forced else rng.randint(1, 3),
                                       with_trial=not forced and rng.random() < 0.4)
    subscription, _ = _live_until(story, subscription, until=story.as_of)
    story.life_end = story.as_of
    at = story.moment(subscription.current_period_start, story.as_of)
    tier, roll = plan_tier(subscription.plan), rng.random()
    monthly = subscription.plan.interval == "month"
    if monthly and tier in _UPGRADES and subscription.status == S.ACTIVE and (forced or roll < 0.2):
        change = subscription_change_plan(subscription=subscription, new_plan=story.plan(_UPGRADES[tier]),
                                          actor=story.me, now=at, reason="needs more API capacity")
        if change.invoice is not None:
            collect(story, change.invoice, at + timedelta(minutes=5))
    elif monthly and tier in _DOWNGRADES and roll < 0.35:
        subscription_change_plan(subscription=subscription, new_plan=story.plan(_DOWNGRADES[tier]), actor=story.me,
                                 now=at, reason="budget cut")
    elif roll < 0.5:
        subscription_cancel(subscription=subscription, actor=story.me, at_period_end=True, now=at,
                            reason="moving the project in-house")


def _story_trialing(story: Story, plan: Plan, forced: bool) -> None:
    rng = story.rng
    start = story.as_of - timedelta(days=rng.randint(1, plan.trial_days - 1), hours=rng.randint(0, 23))
    story.life_start, story.life_end = start, story.as_of
    subscription_start(customer=story.customer, plan=plan, actor=story.me, now=start, with_trial=True)
    activity(story, start, story.as_of, tier=plan_tier(plan))


def _story_past_due(story: Story, plan: Plan, forced: bool) -> None:
    subscription = _start_established(story, plan, months_back=story.rng.randint(2, 3),
                                      with_trial=not forced and story.rng.random() < 0.3)
    _live_until(story, subscription, until=story.as_of, last_outcome="failed")
    story.life_end = story.as_of


def _story_paused(story: Story, plan: Plan, forced: bool) -> None:
    rng = story.rng
    subscription = _start_established(story, plan, months_back=3 if forced else rng.randint(1, 3),
                                      with_trial=rng.random() < 0.3)
    paused_at = story.as_of - timedelta(days=rng.randint(1, 12), hours=rng.randint(0, 23))
    subscription, _ = _live_until(story, subscription, until=paused_at)
    subscription_pause(subscription=subscription, actor=story.staff, reason="customer asked to pause for a season",
                       now=paused_at)
    story.life_end = paused_at
    if forced or (plan.amount and rng.random() < 0.08):
        invoice_issued_in_error(story, story.moment(story.life_start, paused_at))


def _story_canceled(story: Story, plan: Plan, forced: bool) -> None:
    rng = story.rng
    variant = "dunning" if forced else rng.choice(["dunning", "period_end", "unpaid"])
    if not plan.amount:
        variant = "period_end"
    ends_at = story.as_of - timedelta(days=rng.randint(10, 30), hours=rng.randint(0, 23))
    subscription = _start_established(story, plan, months_back=3 if forced else rng.randint(2, 3),
                                      with_trial=not forced and rng.random() < 0.3)
    outcome = {"dunning": "failed", "unpaid": "unpaid", "period_end": "paid"}[variant]
    subscription, invoice = _live_until(story, subscription, until=ends_at, last_outcome=outcome)
    canceled_at, reason, actor = ends_at, "customer canceled", story.me
    if invoice is not None and variant == "dunning":
        card_declined(story, invoice, invoice.issued_at + timedelta(days=3))
        canceled_at, reason, actor = invoice.issued_at + timedelta(days=7), "payment failed repeatedly", story.staff
        with transaction.atomic():
            invoice_transition(invoice=invoice_lock(invoice_id=invoice.pk), to_status=InvoiceStatus.UNCOLLECTIBLE,
                               actor=story.staff, reason="written off after two declines", now=canceled_at)
    elif invoice is not None and variant == "unpaid":
        canceled_at, reason = invoice.issued_at + timedelta(days=1), "customer left before paying the renewal"
        actor = story.staff
        invoice_void(invoice=invoice, actor=story.staff, reason=reason, now=canceled_at)
    elif variant == "period_end" and subscription.current_period_end <= story.as_of:
        subscription_cancel(subscription=subscription, actor=story.me, at_period_end=True, now=ends_at,
                            reason="switching provider")
        canceled_at, reason, actor = subscription.current_period_end, "canceled at period end", RUN_ACTOR
        activity(story, ends_at, canceled_at, tier=plan_tier(subscription.plan))
    subscription_cancel(subscription=subscription, actor=actor, now=canceled_at, reason=reason)
    story.life_end = canceled_at


def _story_incomplete(story: Story, plan: Plan, forced: bool) -> None:
    rng = story.rng
    start = story.as_of - timedelta(days=rng.randint(0, 3), hours=rng.randint(1, 20))
    story.life_start = story.life_end = start
    _, invoice = subscription_start(customer=story.customer, plan=plan, actor=story.me, now=start, with_trial=False)
    if invoice is not None and (forced or rng.random() < 0.6):
        card_declined(story, invoice, start + timedelta(minutes=rng.randint(1, 30)))


_STORIES = {S.ACTIVE: _story_active, S.TRIALING: _story_trialing, S.PAST_DUE: _story_past_due,
            S.PAUSED: _story_paused, S.CANCELED: _story_canceled, S.INCOMPLETE: _story_incomplete}


def demo_story_tell(story: Story, plan: Plan, *, status: str) -> None:
    """One unforced demo story ending in `status`, for customers built elsewhere (seeding/arabic.py)."""
    _STORIES[status](story, plan, False)


# ---------------------------------------------------------------------------------------- entry point


def _pick(index: int, rng: random.Random) -> tuple[str, str, str, bool]:
    if index <= len(_FORCED_STORIES):
        status, plan, method = _FORCED_STORIES[index - 1]
        return status, plan, method, True
    status = rng.choices(list(_STATUS_WEIGHTS), weights=list(_STATUS_WEIGHTS.values()))[0]
    plans = dict(_PLAN_WEIGHTS)
    if status in (S.TRIALING, S.PAST_DUE, S.INCOMPLETE):
        plans.pop("free")  # a free plan has no trial and no invoice to miss
    if status == S.PAST_DUE:
        plans = {code: w for code, w in plans.items() if not code.endswith("-yearly")}  # needs a renewal by now
    plan = rng.choices(list(plans), weights=list(plans.values()))[0]
    method = rng.choices(list(_METHOD_WEIGHTS), weights=list(_METHOD_WEIGHTS.values()))[0]
    return status, plan, method, False


def _saved_method_rail(index: int) -> PaymentProvider | None:
    """Where demo customer `index` keeps its saved method: every third customer after the six fixed stories
    (12, 15, 18, 24 of the default 25) at the second installed rail that charges saved methods off-session
    (PayPal's wallet by default), so the demo shows both rails; the others, and all of them when only one
    such rail is installed, at the card rail."""
    rails = [rail for rail in providers_installed() if Capability.OFF_SESSION_CHARGE in rail.capabilities]
    if index > len(_FORCED_STORIES) and index % 3 == 0 and len(rails) > 1:
        return rails[1]
    return card_rail()


def _card_saved(*, customer: Customer, index: int, as_of: datetime) -> tuple[str, str]:
    """A saved card (or wallet), as the rail's hosted checkout would have left it (fake ids: the demo never
    calls a provider); the story's method and rail, or a bank transfer when no such rail is installed."""
    rail = _saved_method_rail(index)
    if rail is None:
        return M.BANK_TRANSFER, ""
    provider_account_reference_set(customer=customer, provider=rail.code, provider_customer_id=f"cus_demo{index:03d}")
    provider_account_default_payment_method_set(customer=customer, provider=rail.code,
                                                payment_method_id=f"pm_demo{index:03d}", observed_at=as_of,
                                                actor=Actor.system("seed"))
    return CARD, rail.code


def demo_customer_build(*, index: int, as_of: datetime, catalog: Catalog, staff: Actor) -> Customer | None:
    """Create demo customer number `index` with its whole history, or return None if it exists."""
    username = demo_username(index)
    if Customer.objects.filter(external_id=username).exists():
        return None
    rng = random.Random(f"{DEMO_RANDOM_SEED}:{index}")
    status, plan_code, method, forced = _pick(index, rng)
    base_name = DEMO_COMPANY_NAMES[(index - 1) % len(DEMO_COMPANY_NAMES)]
    round_number = (index - 1) // len(DEMO_COMPANY_NAMES)
    name = f"{base_name} {round_number + 1}" if round_number else base_name
    with transaction.atomic():
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.com", "first_name": base_name[:150]})
        if created:
            # No password: nobody signs in as a demo customer by guessing one (and hashing 25 would be slow).
            user.set_unusable_password()
            user.save(update_fields=["password"])
        customer = customer_create(name=name, email=f"{username}@example.com", user=user,
                                   currency=catalog.plans[plan_code].currency, external_id=username,
                                   metadata={"demo": True, "story": status})
        # The customer's programs call the API with this token (the seed prints one as a curl example).
        Token.objects.get_or_create(user=user)
        rail = ""
        if method == CARD:
            method, rail = _card_saved(customer=customer, index=index, as_of=as_of)
        story = Story(index=index, rng=rng, customer=customer, as_of=as_of, catalog=catalog, staff=staff,
                      method=method, forced_credit_kinds=list(CREDIT_EVENTS) if index == 1 else [], rail=rail)
        plan = catalog.plans[plan_code]
        _STORIES[status](story, plan, forced)
        if index in (1, 4) or (not forced and rng.random() < 0.15):
            refund_one(story, full=index == 4 or (index != 1 and rng.random() < 0.5))
        credit_grants_expire(customer=customer, actor=_EXPIRY, now=as_of)
        usage_bulk(story, tier=plan_tier(plan))
    return customer
