"""Demo customers with a believable past, written through the services with `now=` in the past.

Each customer is one deterministic story (its own `random.Random`, seeded by its number) built in one
transaction: a run that stops half-way leaves whole customers only, and the next run carries on with
the missing ones. A customer that exists (by external id) is skipped, which makes the seed idempotent.

Audit rows keep `created_at` = when the seed wrote them (that is the truth); the business times
(periods, issued/paid/succeeded at, grant effective/expiry, usage occurred at) lie in the past.
"""

import random
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction

from billing_project.audit import Actor
from billing_project.exceptions import InsufficientCredits, InvalidOperation
from credits.models import CreditLedgerEntry, CreditSource, LedgerKind
from credits.services import credit_debit_reverse, credit_grant, credit_grants_expire, credit_plan_refill
from payments.models import (
    BillingReason,
    Invoice,
    InvoiceLineKind,
    InvoiceStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
)
from payments.seeding.catalog import Catalog, major_to_minor
from payments.seeding.data import CREDIT_PACKS, DEMO_COMPANY_NAMES
from payments.seeding.history import (
    BILLING_RUN,
    card_payment,
    card_refund,
    renew_for_history,
)
from payments.services import (
    LineSpec,
    invoice_create,
    invoice_finalize,
    invoice_lock,
    invoice_transition,
    invoice_void,
    payment_record_manual,
    payment_refund,
    subscription_change_plan,
    subscription_start,
)
from subscriptions.models import Customer, Plan, Subscription, SubscriptionStatus
from subscriptions.periods import add_months, period_containing
from subscriptions.services import (
    customer_create,
    subscription_cancel,
    subscription_lock,
    subscription_pause,
    subscription_transition,
)
from usage.models import Meter, UsageEvent
from usage.services import usage_event_record

# Fixed so every run (and every machine) tells the same stories.
DEMO_RANDOM_SEED = 20260101

S = SubscriptionStatus
M = PaymentMethod
_EXPIRY = Actor.system("credit-expiry")

# The first six customers cover every subscription status (and, between them, every payment method
# and invoice status), so even `--demo 6` shows the whole back office: (status, plan, payment method).
_FORCED_STORIES = [
    (S.ACTIVE, "pro", M.STRIPE),
    (S.TRIALING, "basic", M.STRIPE),
    (S.PAST_DUE, "basic", M.BANK_TRANSFER),
    (S.PAUSED, "pro", M.CHECK),
    (S.CANCELED, "basic", M.CASH),
    (S.INCOMPLETE, "enterprise", M.STRIPE),
]
_STATUS_WEIGHTS = {S.ACTIVE: 50, S.TRIALING: 10, S.PAST_DUE: 8, S.PAUSED: 6, S.CANCELED: 16, S.INCOMPLETE: 10}
_PLAN_WEIGHTS = {"free": 22, "basic": 30, "basic-yearly": 6, "pro": 22, "pro-yearly": 5, "enterprise": 10,
                 "enterprise-yearly": 5}
_METHOD_WEIGHTS = {M.STRIPE: 55, M.BANK_TRANSFER: 20, M.CHECK: 10, M.CASH: 15}
# Daily API calls of a typical customer on each tier.
_API_CALLS_PER_DAY = {"free": 120, "basic": 1_500, "pro": 12_000, "enterprise": 70_000}
_UPGRADES = {"basic": "pro", "pro": "enterprise"}
_DOWNGRADES = {"pro": "basic", "enterprise": "pro"}
_REPORT_KINDS = ["monthly_summary", "usage_breakdown", "invoice_export", "churn_forecast"]


def demo_username(index: int) -> str:
    return f"demo-customer-{index:03d}"


@dataclass
class _Story:
    index: int
    rng: random.Random
    customer: Customer
    as_of: datetime
    catalog: Catalog
    staff: Actor
    method: str
    # Extra credit events the first customer is given so the credit screens show every kind of row.
    forced_credit_kinds: list[str] = field(default_factory=list)
    life_start: datetime | None = None
    life_end: datetime | None = None
    sequence: int = 0

    @property
    def me(self) -> Actor:
        return Actor.of_user(self.customer.user)

    def next_ref(self, prefix: str) -> str:
        """Deterministic, globally unique fake provider ids and references (pi_demo007x003)."""
        self.sequence += 1
        return f"{prefix}_demo{self.index:03d}x{self.sequence:03d}"

    def moment(self, start: datetime, end: datetime) -> datetime:
        span = max(int((end - start).total_seconds()), 1)
        return start + timedelta(seconds=self.rng.randrange(span))

    def meter(self, code: str) -> Meter:
        return self.catalog.meters[code]

    def plan(self, code: str) -> Plan:
        return self.catalog.plans[code]


# ---------------------------------------------------------------------------------------- money in


def _collect(story: _Story, invoice: Invoice, at: datetime) -> None:
    """The customer pays an open invoice with its usual method."""
    invoice.refresh_from_db()
    if invoice.status != InvoiceStatus.OPEN or invoice.amount_due == 0:
        return
    if story.method == M.STRIPE:
        card_payment(customer=story.customer, invoice=invoice, succeed=True, at=at,
                     payment_intent_id=story.next_ref("pi"), charge_id=story.next_ref("ch"))
        return
    label = {M.CHECK: "check", M.BANK_TRANSFER: "transfer", M.CASH: "receipt"}[story.method]
    reference = f"{label} {story.next_ref(label[:2]).upper()}"
    payment_record_manual(customer=story.customer, amount=invoice.amount_due, method=story.method, actor=story.staff,
                          invoice=invoice, reference=reference, now=at)


def _card_declined(story: _Story, invoice: Invoice, at: datetime) -> None:
    """A card attempt fails: the invoice stays open for another attempt and a live subscription falls
    past due."""
    card_payment(customer=story.customer, invoice=invoice, succeed=False, at=at,
                 payment_intent_id=story.next_ref("pi"), charge_id=None)
    if invoice.subscription_id is None:
        return
    with transaction.atomic():
        subscription = subscription_lock(subscription_id=invoice.subscription_id)
        if subscription.status in (S.ACTIVE, S.TRIALING):
            subscription_transition(subscription=subscription, to_status=S.PAST_DUE, actor=BILLING_RUN,
                                    reason=f"payment of {invoice.number} failed", now=at)


# ---------------------------------------------------------------------------------------- credits


def _report(story: _Story, at: datetime) -> None:
    # Out of credits: the event is refused and not recorded, exactly as the live API would.
    with suppress(InsufficientCredits):
        usage_event_record(customer=story.customer, meter=story.meter("report_generations"),
                           idempotency_key=story.next_ref("report"), quantity=Decimal(story.rng.randint(1, 3)),
                           occurred_at=at, properties={"report": story.rng.choice(_REPORT_KINDS)}, actor=story.me)


def _promotion(story: _Story, at: datetime) -> None:
    credit_grant(customer=story.customer, amount=story.rng.choice([10, 25, 50]), source=CreditSource.PROMOTION,
                 actor=story.staff, reason="Spring promotion", priority=0, effective_at=at,
                 expires_at=at + timedelta(days=30), idempotency_key=story.next_ref("promo"))


def _credit_pack(story: _Story, at: datetime) -> None:
    credits, price = story.rng.choice(CREDIT_PACKS)
    invoice = invoice_create(customer=story.customer, billing_reason=BillingReason.CREDIT_PACK, lines=[LineSpec(
        kind=InvoiceLineKind.CREDIT_PACK, description=f"Credit pack: {credits} credits",
        unit_amount=Decimal(major_to_minor(amount=price, currency=story.customer.currency)),
        metadata={"credits": credits})])
    invoice = invoice_finalize(invoice=invoice, actor=story.me, now=at)
    _collect(story, invoice, at + timedelta(minutes=2))
    credit_grant(customer=story.customer, amount=credits, source=CreditSource.PURCHASE, actor=story.me,
                 reason=f"credit pack, invoice {invoice.number}", effective_at=at + timedelta(minutes=2),
                 idempotency_key=f"credit-pack:{invoice.pk}")


def _adjustment(story: _Story, at: datetime) -> None:
    credit_grant(customer=story.customer, amount=story.rng.choice([5, 20, 100]), source=CreditSource.ADJUSTMENT,
                 actor=story.staff, reason="Goodwill credits after a support ticket", effective_at=at,
                 idempotency_key=story.next_ref("adjust"))


def _reversal(story: _Story, at: datetime) -> None:
    debit = (CreditLedgerEntry.objects.filter(customer=story.customer, kind=LedgerKind.DEBIT)
             .order_by("-id").first())
    if debit is None:
        return
    # InvalidOperation: every grant it used has expired since, so there is nothing to give back.
    with suppress(InvalidOperation):
        credit_debit_reverse(entry=debit, actor=story.staff, reason="Report failed; credits returned", now=at)


_CREDIT_EVENTS = {"promotion": (_promotion, 0.10), "purchase": (_credit_pack, 0.07),
                  "adjustment": (_adjustment, 0.05), "reversal": (_reversal, 0.08)}


def _activity(story: _Story, start: datetime, end: datetime, *, tier: str) -> None:
    """What a customer does with its credits during [start, end), in time order."""
    end = min(end, story.as_of)
    if end <= start:
        return
    reports = {"free": 2, "basic": 4, "pro": 6, "enterprise": 8}[tier]
    moments = [(story.moment(start, end), "report") for _ in range(story.rng.randint(1, reports))]
    for kind, (_, probability) in _CREDIT_EVENTS.items():
        if story.rng.random() < probability or kind in story.forced_credit_kinds:
            moments.append((story.moment(start, end), kind))
    story.forced_credit_kinds = []
    for at, kind in sorted(moments):
        if kind == "report":
            _report(story, at)
        else:
            _CREDIT_EVENTS[kind][0](story, at)


# ---------------------------------------------------------------------------------------- lifecycle


def _tier(plan: Plan) -> str:
    return plan.code.removesuffix("-yearly")


def _start_established(story: _Story, plan: Plan, *, months_back: int, with_trial: bool) -> Subscription:
    rng = story.rng
    start = add_months(story.as_of, -months_back) - timedelta(days=rng.randint(0, 20), hours=rng.randint(0, 23),
                                                              minutes=rng.randint(0, 59))
    story.life_start = start
    subscription, invoice = subscription_start(customer=story.customer, plan=plan, actor=story.me, now=start,
                                               with_trial=with_trial)
    if invoice is not None:
        _collect(story, invoice, start + timedelta(minutes=rng.randint(1, 90)))
    return Subscription.objects.get(pk=subscription.pk)


def _live_until(story: _Story, subscription: Subscription, *, until: datetime,
                last_outcome: str = "paid") -> tuple[Subscription, Invoice | None]:
    """Live through every period boundary up to `until`: the period's activity, then the renewal and
    its collection. The last renewal's invoice is paid, declined ("failed") or left open ("unpaid")."""
    last_invoice = None
    while subscription.current_period_end <= until:
        plan = subscription.plan
        _activity(story, subscription.current_period_start, subscription.current_period_end, tier=_tier(plan))
        boundary = subscription.current_period_end
        _, next_end = period_containing(anchor=subscription.billing_cycle_anchor, interval=plan.interval,
                                        interval_count=plan.interval_count, instant=boundary)
        outcome = last_outcome if next_end > until else "paid"
        was_trialing = subscription.status == S.TRIALING
        subscription, invoice = renew_for_history(subscription=subscription, at=boundary)
        collected_at = boundary + timedelta(minutes=story.rng.randint(1, 240))
        if invoice is not None and outcome == "paid":
            _collect(story, invoice, collected_at)
        elif invoice is not None and outcome == "failed":
            _card_declined(story, invoice, collected_at)
        if invoice is None or outcome == "paid":
            with transaction.atomic():
                subscription = subscription_lock(subscription_id=subscription.pk)
                if was_trialing and subscription.status == S.TRIALING:
                    subscription_transition(subscription=subscription, to_status=S.ACTIVE, actor=BILLING_RUN,
                                            reason="trial converted", now=collected_at)
                credit_plan_refill(subscription=subscription, actor=BILLING_RUN)
        subscription = Subscription.objects.select_related("plan", "customer").get(pk=subscription.pk)
        last_invoice = invoice
    _activity(story, subscription.current_period_start, until, tier=_tier(subscription.plan))
    return subscription, last_invoice


def _story_active(story: _Story, plan: Plan, forced: bool) -> None:
    rng = story.rng
    subscription = _start_established(story, plan, months_back=3 if forced else rng.randint(1, 3),
                                       with_trial=not forced and rng.random() < 0.4)
    subscription, _ = _live_until(story, subscription, until=story.as_of)
    story.life_end = story.as_of
    at = story.moment(subscription.current_period_start, story.as_of)
    tier, roll = _tier(subscription.plan), rng.random()
    monthly = subscription.plan.interval == "month"
    if monthly and tier in _UPGRADES and subscription.status == S.ACTIVE and (forced or roll < 0.2):
        change = subscription_change_plan(subscription=subscription, new_plan=story.plan(_UPGRADES[tier]),
                                          actor=story.me, now=at, reason="needs more API capacity")
        if change.invoice is not None:
            _collect(story, change.invoice, at + timedelta(minutes=5))
    elif monthly and tier in _DOWNGRADES and roll < 0.35:
        subscription_change_plan(subscription=subscription, new_plan=story.plan(_DOWNGRADES[tier]), actor=story.me,
                                 now=at, reason="budget cut")
    elif roll < 0.5:
        subscription_cancel(subscription=subscription, actor=story.me, at_period_end=True, now=at,
                            reason="moving the project in-house")


def _story_trialing(story: _Story, plan: Plan, forced: bool) -> None:
    rng = story.rng
    start = story.as_of - timedelta(days=rng.randint(1, plan.trial_days - 1), hours=rng.randint(0, 23))
    story.life_start, story.life_end = start, story.as_of
    subscription_start(customer=story.customer, plan=plan, actor=story.me, now=start, with_trial=True)
    _activity(story, start, story.as_of, tier=_tier(plan))


def _story_past_due(story: _Story, plan: Plan, forced: bool) -> None:
    subscription = _start_established(story, plan, months_back=story.rng.randint(2, 3),
                                      with_trial=not forced and story.rng.random() < 0.3)
    _live_until(story, subscription, until=story.as_of, last_outcome="failed")
    story.life_end = story.as_of


def _story_paused(story: _Story, plan: Plan, forced: bool) -> None:
    rng = story.rng
    subscription = _start_established(story, plan, months_back=3 if forced else rng.randint(1, 3),
                                      with_trial=rng.random() < 0.3)
    paused_at = story.as_of - timedelta(days=rng.randint(1, 12), hours=rng.randint(0, 23))
    subscription, _ = _live_until(story, subscription, until=paused_at)
    subscription_pause(subscription=subscription, actor=story.staff, reason="customer asked to pause for a season",
                       now=paused_at)
    story.life_end = paused_at
    if forced or (plan.amount and rng.random() < 0.08):
        _invoice_issued_in_error(story, story.moment(story.life_start, paused_at))


def _story_canceled(story: _Story, plan: Plan, forced: bool) -> None:
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
        _card_declined(story, invoice, invoice.issued_at + timedelta(days=3))
        canceled_at, reason, actor = invoice.issued_at + timedelta(days=7), "payment failed repeatedly", story.staff
        with transaction.atomic():
            invoice_transition(invoice=invoice_lock(invoice_id=invoice.pk), to_status=InvoiceStatus.UNCOLLECTIBLE,
                               actor=story.staff, reason="written off after three declines", now=canceled_at)
    elif invoice is not None and variant == "unpaid":
        canceled_at, reason = invoice.issued_at + timedelta(days=1), "customer left before paying the renewal"
        actor = story.staff
        invoice_void(invoice=invoice, actor=story.staff, reason=reason, now=canceled_at)
    elif variant == "period_end" and subscription.current_period_end <= story.as_of:
        subscription_cancel(subscription=subscription, actor=story.me, at_period_end=True, now=ends_at,
                            reason="switching provider")
        canceled_at, reason, actor = subscription.current_period_end, "canceled at period end", BILLING_RUN
        _activity(story, ends_at, canceled_at, tier=_tier(subscription.plan))
    subscription_cancel(subscription=subscription, actor=actor, now=canceled_at, reason=reason)
    story.life_end = canceled_at


def _story_incomplete(story: _Story, plan: Plan, forced: bool) -> None:
    rng = story.rng
    start = story.as_of - timedelta(days=rng.randint(0, 3), hours=rng.randint(1, 20))
    story.life_start = story.life_end = start
    _, invoice = subscription_start(customer=story.customer, plan=plan, actor=story.me, now=start, with_trial=False)
    if invoice is not None and (forced or rng.random() < 0.6):
        _card_declined(story, invoice, start + timedelta(minutes=rng.randint(1, 30)))


_STORIES = {S.ACTIVE: _story_active, S.TRIALING: _story_trialing, S.PAST_DUE: _story_past_due,
            S.PAUSED: _story_paused, S.CANCELED: _story_canceled, S.INCOMPLETE: _story_incomplete}


def _invoice_issued_in_error(story: _Story, at: datetime) -> None:
    invoice = invoice_create(customer=story.customer, lines=[LineSpec(
        kind=InvoiceLineKind.ADJUSTMENT, description="Onboarding workshop",
        unit_amount=Decimal(major_to_minor(amount=Decimal(150), currency=story.customer.currency)))])
    invoice = invoice_finalize(invoice=invoice, actor=story.staff, now=at)
    invoice_void(invoice=invoice, actor=story.staff, reason="issued in error: the workshop was included",
                 now=at + timedelta(hours=2))


def _refund_one(story: _Story, *, full: bool) -> None:
    payment = (Payment.objects.filter(customer=story.customer, status=PaymentStatus.SUCCEEDED)
               .order_by("succeeded_at", "id").last() if full else
               Payment.objects.filter(customer=story.customer, status=PaymentStatus.SUCCEEDED)
               .order_by("succeeded_at", "id").first())
    if payment is None:
        return
    amount = payment.amount if full else max(payment.amount // 2, 1)
    at = min(payment.succeeded_at + timedelta(days=story.rng.randint(1, 5)), story.as_of)
    reason = "charged twice by mistake" if full else "partial refund for downtime"
    if payment.method == M.STRIPE:
        card_refund(payment=payment, amount=amount, actor=story.staff, reason=reason, at=at,
                    refund_id=story.next_ref("re"))
    else:
        payment_refund(payment=payment, actor=story.staff, amount=amount, reason=reason, now=at,
                       idempotency_key=story.next_ref("refund"))


# ---------------------------------------------------------------------------------------- usage


def _usage_bulk(story: _Story, *, tier: str) -> int:
    """Daily API calls, storage and active users over the customer's life, written in one insert:
    these meters cost no credits, so nothing else has to happen per event."""
    if story.life_start is None or story.life_end is None or story.life_end <= story.life_start:
        return 0
    rng, events = story.rng, []
    api, storage, users = story.meter("api_calls"), story.meter("storage_gb"), story.meter("active_users")
    calls_per_day, gigabytes = _API_CALLS_PER_DAY[tier], Decimal(rng.randint(1, 8) * (1 + len(tier)))
    team = [f"user-{n:02d}" for n in range(1, {"free": 2, "basic": 4, "pro": 12, "enterprise": 40}[tier] + 1)]
    day = story.life_start
    while day < story.life_end:
        stamp = f"{day:%Y%m%d}"
        events.append(UsageEvent(customer=story.customer, meter=api, occurred_at=day,
                                 quantity=Decimal(int(calls_per_day * rng.uniform(0.4, 1.6))),
                                 idempotency_key=f"demo-api-{stamp}", properties={"source": "gateway"}))
        gigabytes += Decimal(rng.randint(0, 20)) / 100
        events.append(UsageEvent(customer=story.customer, meter=storage, occurred_at=day + timedelta(minutes=5),
                                 quantity=gigabytes, idempotency_key=f"demo-storage-{stamp}"))
        for n, member in enumerate(rng.sample(team, rng.randint(1, len(team)))):
            events.append(UsageEvent(customer=story.customer, meter=users, occurred_at=day + timedelta(minutes=10 + n),
                                     quantity=Decimal(1), idempotency_key=f"demo-users-{stamp}-{member}",
                                     properties={"user_id": member}))
        day += timedelta(days=1)
    UsageEvent.objects.bulk_create(events, batch_size=1000, ignore_conflicts=True)
    return len(events)


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
            # Demo accounts sign in with API tokens, never a password (and hashing 25 would be slow).
            user.set_unusable_password()
            user.save(update_fields=["password"])
        customer = customer_create(name=name, email=f"{username}@example.com", user=user,
                                   currency=catalog.plans[plan_code].currency, external_id=username,
                                   metadata={"demo": True, "story": status})
        story = _Story(index=index, rng=rng, customer=customer, as_of=as_of, catalog=catalog, staff=staff,
                       method=method, forced_credit_kinds=list(_CREDIT_EVENTS) if index == 1 else [])
        plan = catalog.plans[plan_code]
        _STORIES[status](story, plan, forced)
        if index in (1, 4) or (not forced and rng.random() < 0.15):
            _refund_one(story, full=index == 4 or (index != 1 and rng.random() < 0.5))
        credit_grants_expire(customer=customer, actor=_EXPIRY, now=as_of)
        _usage_bulk(story, tier=_tier(plan))
    return customer
