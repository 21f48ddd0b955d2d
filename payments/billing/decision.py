"""The renewal decision: for one subscription at one instant, what comes next.

The billing run, resuming a paused subscription and the invoice preview all ask this one function and
act on its answer, so the three never disagree about which period is billed, from which anchor, with
which usage, or whether the subscription ends instead. Pure: it reads the subscription (and its plans and
customer, already loaded) and writes nothing."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings

from payments.billing.lines import period_lines
from payments.models import BillingReason
from payments.selectors.provider_accounts import row_has_saved_payment_method
from payments.services import LineSpec
from subscriptions.models import Plan, Subscription, SubscriptionStatus
from subscriptions.periods import period_boundary, period_containing
from usage.models import MeterPrice

S = SubscriptionStatus


class RenewalKind:
    # Nothing is due yet (the period runs on); a paused subscription resumed inside its period carries on.
    WAIT = "wait"
    # Paused, incomplete or canceled: nothing renews at all.
    DORMANT = "dormant"
    # The next period follows the current one, counted from the unchanged cycle anchor.
    CONTINUE = "continue"
    # A trial ended and the first paid period starts where it ended.
    CONVERT_TRIAL = "convert_trial"
    # Resumed after its period ended: the cycle restarts at the resume instant (the paused stretch in
    # between is neither billed nor credited).
    RESTART = "restart"
    # Canceled at period end, or a trial that cannot be paid: a final invoice in arrears, then canceled.
    END = "end"


@dataclass(frozen=True)
class RenewalDecision:
    kind: str
    # The plan in force next period (a scheduled downgrade applies); its fee is billed in advance.
    plan: Plan | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    # The cycle anchor afterwards (moves only on RESTART).
    anchor: datetime | None = None
    # The window whose usage is billed in arrears; None when no usage is billed (a trial).
    usage_start: datetime | None = None
    usage_end: datetime | None = None
    # The status the subscription moves to, None when it keeps its own.
    to_status: str | None = None
    billing_reason: str = BillingReason.SUBSCRIPTION_CYCLE
    # Why, in the words the audit trail uses.
    reason: str = ""

    @property
    def renews(self) -> bool:
        return self.kind in (RenewalKind.CONTINUE, RenewalKind.CONVERT_TRIAL, RenewalKind.RESTART)

    @property
    def ends(self) -> bool:
        return self.kind == RenewalKind.END


def trial_needs_cancel(*, subscription: Subscription, plan: Plan) -> bool:
    """A trial of a paid plan ends in cancellation when the customer has no way to pay."""
    if plan.is_free or not settings.BILLING_REQUIRE_PAYMENT_METHOD_FOR_TRIAL_CONVERSION:
        return False
    return not row_has_saved_payment_method(row=subscription, customer=subscription.customer)


def next_period(*, subscription: Subscription, plan: Plan) -> tuple[datetime, datetime]:
    """The period that follows the current one, counted from the cycle anchor (Jan 31 -> Feb 28 -> Mar 31)."""
    start = subscription.current_period_end
    _, end = period_containing(anchor=subscription.billing_cycle_anchor, interval=plan.interval,
                               interval_count=plan.interval_count, instant=start)
    return start, end


def renewal_decide(*, subscription: Subscription, at: datetime, resuming: bool = False) -> RenewalDecision:
    """What happens to `subscription` at `at`. With `resuming`, a paused subscription is being resumed at
    `at` (otherwise a paused one is dormant: nothing is billed while paused)."""
    sub = subscription
    status = sub.status
    if status == S.PAUSED and not resuming:
        return RenewalDecision(kind=RenewalKind.DORMANT, reason="paused")
    if status not in (S.PAUSED, S.TRIALING, S.ACTIVE, S.PAST_DUE):
        return RenewalDecision(kind=RenewalKind.DORMANT, reason=status)
    old_start, old_end = sub.current_period_start, sub.current_period_end
    resumed_to = S.ACTIVE if status == S.PAUSED else None
    if old_end > at:
        return RenewalDecision(kind=RenewalKind.WAIT, to_status=resumed_to, anchor=sub.billing_cycle_anchor,
                               reason="resumed" if resuming else "period runs on")
    plan = sub.scheduled_plan or sub.plan
    trial = status == S.TRIALING
    usage = {} if trial else {"usage_start": old_start, "usage_end": old_end}
    if sub.cancel_at_period_end or (trial and trial_needs_cancel(subscription=sub, plan=plan)):
        why = "canceled at period end" if sub.cancel_at_period_end else "trial ended without a payment method"
        return RenewalDecision(kind=RenewalKind.END, to_status=S.CANCELED, period_start=old_end, period_end=old_end,
                               anchor=sub.billing_cycle_anchor, reason=why, **usage)
    if status == S.PAUSED:
        end = period_boundary(anchor=at, interval=plan.interval, interval_count=plan.interval_count, periods=1)
        return RenewalDecision(kind=RenewalKind.RESTART, plan=plan, period_start=at, period_end=end, anchor=at,
                               to_status=S.ACTIVE, reason="cycle restarted on resume", **usage)
    start, end = next_period(subscription=sub, plan=plan)
    if trial:
        return RenewalDecision(kind=RenewalKind.CONVERT_TRIAL, plan=plan, period_start=start, period_end=end,
                               anchor=sub.billing_cycle_anchor, to_status=S.ACTIVE,
                               billing_reason=BillingReason.SUBSCRIPTION_CREATE, reason="trial ended")
    return RenewalDecision(kind=RenewalKind.CONTINUE, plan=plan, period_start=start, period_end=end,
                           anchor=sub.billing_cycle_anchor, reason="renewed", **usage)


def decision_lines(*, decision: RenewalDecision, prices: list[MeterPrice],
                   usage: dict[int, Decimal]) -> list[LineSpec]:
    """The period lines the decision bills: the next period's fee in advance (none when it ends) and the
    usage window in arrears."""
    fee = decision.renews
    return period_lines(fee_plan=decision.plan if fee else None, fee_start=decision.period_start if fee else None,
                        fee_end=decision.period_end if fee else None,
                        prices=prices if decision.usage_start is not None else [], usage=usage,
                        usage_start=decision.usage_start, usage_end=decision.usage_end)
