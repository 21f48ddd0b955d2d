"""What a demo customer does between renewals: credit-paid reports, promotions, credit packs,
goodwill adjustments and reversals (in time order, through the services), and the daily usage of the
meters that cost no credits (in one bulk insert)."""

from contextlib import suppress
from datetime import datetime, timedelta
from decimal import Decimal

from core.exceptions import InsufficientCredits, InvalidOperation
from credits.models import CreditLedgerEntry, CreditSource, LedgerKind
from credits.services import credit_debit_reverse, credit_grant
from payments.models import BillingReason, InvoiceLineKind
from payments.seeding.catalog import major_to_minor
from payments.seeding.data import CREDIT_PACKS
from payments.seeding.story import Story, collect
from payments.services import LineSpec, invoice_create, invoice_finalize
from usage.models import UsageEvent
from usage.services import usage_event_record

# Daily API calls of a typical customer on each tier.
_API_CALLS_PER_DAY = {"free": 120, "basic": 1_500, "pro": 12_000, "enterprise": 70_000}
_REPORT_KINDS = ["monthly_summary", "usage_breakdown", "invoice_export", "churn_forecast"]


# ---------------------------------------------------------------------------------------- credits


def _report(story: Story, at: datetime) -> None:
    # Out of credits: the event is refused and not recorded, exactly as the live API would.
    with suppress(InsufficientCredits):
        usage_event_record(customer=story.customer, meter=story.meter("report_generations"),
                           idempotency_key=story.next_ref("report"), quantity=Decimal(story.rng.randint(1, 3)),
                           occurred_at=at, properties={"report": story.rng.choice(_REPORT_KINDS)}, actor=story.me)


def _promotion(story: Story, at: datetime) -> None:
    credit_grant(customer=story.customer, amount=story.rng.choice([10, 25, 50]), source=CreditSource.PROMOTION,
                 actor=story.staff, reason="Spring promotion", priority=0, effective_at=at,
                 expires_at=at + timedelta(days=30), idempotency_key=story.next_ref("promo"))


def _credit_pack(story: Story, at: datetime) -> None:
    credits, price = story.rng.choice(CREDIT_PACKS)
    invoice = invoice_create(customer=story.customer, billing_reason=BillingReason.CREDIT_PACK, lines=[LineSpec(
        kind=InvoiceLineKind.CREDIT_PACK, description=f"Credit pack: {credits} credits",
        unit_amount=Decimal(major_to_minor(amount=price, currency=story.customer.currency)),
        metadata={"credits": credits})])
    invoice = invoice_finalize(invoice=invoice, actor=story.me, now=at)
    collect(story, invoice, at + timedelta(minutes=2))
    credit_grant(customer=story.customer, amount=credits, source=CreditSource.PURCHASE, actor=story.me,
                 reason=f"credit pack, invoice {invoice.number}", effective_at=at + timedelta(minutes=2),
                 idempotency_key=f"credit-pack:{invoice.pk}")


def _adjustment(story: Story, at: datetime) -> None:
    credit_grant(customer=story.customer, amount=story.rng.choice([5, 20, 100]), source=CreditSource.ADJUSTMENT,
                 actor=story.staff, reason="Goodwill credits after a support ticket", effective_at=at,
                 idempotency_key=story.next_ref("adjust"))


def _reversal(story: Story, at: datetime) -> None:
    debit = (CreditLedgerEntry.objects.filter(customer=story.customer, kind=LedgerKind.DEBIT)
             .order_by("-id").first())
    if debit is None:
        return
    # InvalidOperation: every grant it used has expired since, so there is nothing to give back.
    with suppress(InvalidOperation):
        credit_debit_reverse(entry=debit, actor=story.staff, reason="Report failed; credits returned", now=at)


CREDIT_EVENTS = {"promotion": (_promotion, 0.10), "purchase": (_credit_pack, 0.07),
                  "adjustment": (_adjustment, 0.05), "reversal": (_reversal, 0.08)}


def activity(story: Story, start: datetime, end: datetime, *, tier: str) -> None:
    """What a customer does with its credits during [start, end), in time order."""
    end = min(end, story.as_of)
    if end <= start:
        return
    reports = {"free": 2, "basic": 4, "pro": 6, "enterprise": 8}[tier]
    moments = [(story.moment(start, end), "report") for _ in range(story.rng.randint(1, reports))]
    for kind, (_, probability) in CREDIT_EVENTS.items():
        if story.rng.random() < probability or kind in story.forced_credit_kinds:
            moments.append((story.moment(start, end), kind))
    story.forced_credit_kinds = []
    for at, kind in sorted(moments):
        if kind == "report":
            _report(story, at)
        else:
            CREDIT_EVENTS[kind][0](story, at)


# ---------------------------------------------------------------------------------------- usage


def usage_bulk(story: Story, *, tier: str) -> int:
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
