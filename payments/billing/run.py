"""`manage.py billing run`: the steps in order, each looping over batches until nothing due is left.

Dry run: the whole run happens inside one transaction that is rolled back at the end, so it computes
exactly the counts a real run would (same code path) and writes nothing; the batches become savepoints
and hold their locks until the rollback."""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.audit import Actor
from credits.models import CreditGrant
from credits.selectors import credit_customers_with_grants_due
from modules.selectors import billing_steps_skipped
from payments.billing.common import RUN_ACTOR, ProgressCallback, StepCounts, batch_size_default
from payments.billing.dunning import dunning_batch, invoice_ids_due_for_collection, invoices_due_for_collection
from payments.billing.expiry import expiry_batch
from payments.billing.lines import catalog_load
from payments.billing.provider_usage import PROVIDER_USAGE, provider_usage_report
from payments.billing.renewals import RENEWALS, TRIALS, renewal_batch, subscriptions_due

STEPS = (TRIALS, RENEWALS, "expiry", "collection", PROVIDER_USAGE)
SUMMARY_KEYS = ("trials_converted", "trials_canceled", "renewed", "canceled", "invoiced", "refilled", "expired",
                "collected", "processing", "failed", "uncollectible", "canceled_unpaid", "collection_skipped",
                "to_charge", "usage_reported", "usage_report_failed")


# How the summary names each count (the keys stay machine words in `counts` and in the jobs' results).
SUMMARY_LABELS = {
    "trials_converted": gettext_lazy("trials converted"), "trials_canceled": gettext_lazy("trials canceled"),
    "renewed": gettext_lazy("renewed"), "canceled": gettext_lazy("canceled"), "invoiced": gettext_lazy("invoiced"),
    "refilled": gettext_lazy("refilled"), "expired": gettext_lazy("expired"), "collected": gettext_lazy("collected"),
    "processing": gettext_lazy("processing"), "failed": gettext_lazy("failed"),
    "uncollectible": gettext_lazy("uncollectible"), "canceled_unpaid": gettext_lazy("canceled unpaid"),
    "collection_skipped": gettext_lazy("collection skipped"), "to_charge": gettext_lazy("to charge"),
    "usage_reported": gettext_lazy("usage reported"), "usage_report_failed": gettext_lazy("usage report failed"),
}


@dataclass
class BillingRunSummary:
    as_of: datetime
    dry_run: bool
    counts: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    # Steps left out because the module that owns them is disabled (docs/modules.md).
    skipped: tuple[str, ...] = ()

    def line(self) -> str:
        """The run in one line, in the active language (the command's reader's; a job's is LANGUAGE_CODE)."""
        # Translators: one count of the billing run's summary: "renewed 3".
        shown = ", ".join(_("%(label)s %(count)s") % {"label": SUMMARY_LABELS[key], "count": self.counts.get(key, 0)}
                          for key in SUMMARY_KEYS
                          if self.counts.get(key) or key in ("renewed", "invoiced", "collected", "failed", "expired"))
        template = (_("Dry run (nothing written) as of %(as_of)s: %(counts)s.") if self.dry_run
                    else _("Billing run as of %(as_of)s: %(counts)s."))
        line = template % {"as_of": self.as_of.isoformat(), "counts": shown}
        if self.skipped:
            line += " " + _("Skipped (module disabled): %(steps)s.") % {"steps": ", ".join(self.skipped)}
        return line


class _DryRunRollback(Exception):
    pass


def billing_due_counts(*, as_of: datetime) -> dict[str, int]:
    """Roughly how much each step will do (a progress bar's total; renewals may add collections)."""
    return {
        TRIALS: subscriptions_due(step=TRIALS, as_of=as_of).count(),
        RENEWALS: subscriptions_due(step=RENEWALS, as_of=as_of).count(),
        "expiry": CreditGrant.objects.filter(spendable=True, expires_at__lte=as_of).count(),
        "collection": invoices_due_for_collection(as_of=as_of).count(),
    }


def billing_run(*, as_of: datetime, dry_run: bool = False, limit: int | None = None,
                batch_size: int | None = None, actor: Actor = RUN_ACTOR,
                progress: ProgressCallback | None = None) -> BillingRunSummary:
    """Do everything due at `as_of`. `limit` caps how many items each step handles in this run."""
    summary = BillingRunSummary(as_of=as_of, dry_run=dry_run,
                                skipped=tuple(step for step in STEPS if step in billing_steps_skipped()))
    if not dry_run:
        _steps(summary=summary, limit=limit, batch_size=batch_size or batch_size_default(), actor=actor,
               progress=progress)
        return summary
    try:
        with transaction.atomic():
            _steps(summary=summary, limit=limit, batch_size=batch_size or batch_size_default(), actor=actor,
                   progress=progress)
            raise _DryRunRollback
    except _DryRunRollback:
        pass
    return summary


def _steps(*, summary: BillingRunSummary, limit: int | None, batch_size: int, actor: Actor,
           progress: ProgressCallback | None) -> None:
    as_of = summary.as_of
    catalog = catalog_load()

    def record(step: str, counts: StepCounts) -> int:
        handled = sum(counts.counts.get(key, 0) for key in _HANDLED[step])
        summary.batches += 1
        for key, value in counts.counts.items():
            summary.counts[key] = summary.counts.get(key, 0) + value
        if progress:
            progress(step, handled)
        return handled

    def room(done: int) -> int:
        return batch_size if limit is None else min(batch_size, limit - done)

    # Renewal steps walk forward by primary key (no batch rescans rows an earlier one moved on). A
    # subscription several periods behind is due again after its renewal, so passes repeat until one
    # finds nothing.
    # Invoices nobody can pay get their first attempt recorded as they are issued, when this run collects.
    settle_first_attempts = "collection" not in summary.skipped
    for step in (TRIALS, RENEWALS):
        if step in summary.skipped:
            continue
        done = 0
        while limit is None or done < limit:
            cursor = pass_handled = 0
            while limit is None or done < limit:
                counts = renewal_batch(step=step, as_of=as_of, batch_size=room(done), actor=actor, catalog=catalog,
                                       after_pk=cursor, settle_first_attempts=settle_first_attempts)
                if counts is None:
                    break
                cursor = counts.last_pk
                handled = record(step, counts)
                done += handled
                pass_handled += handled
            if not pass_handled:
                break

    # Expiry and collection read their work list once (after the steps before them) and cut it into
    # batches; each item is handled at most once per run.
    listed = (
        ("expiry", lambda: credit_customers_with_grants_due(now=as_of),
         lambda ids: expiry_batch(as_of=as_of, customer_ids=ids, actor=actor)),
        ("collection", lambda: invoice_ids_due_for_collection(as_of=as_of),
         lambda ids: dunning_batch(as_of=as_of, invoice_ids=ids, actor=actor, charge_cards=not summary.dry_run)),
    )
    for step, work_list, batch in listed:
        if step in summary.skipped:
            continue
        ids, done, position = work_list(), 0, 0
        while position < len(ids) and (limit is None or done < limit):
            chunk = ids[position:position + room(done)]
            position += len(chunk)
            done += record(step, batch(chunk))

    # Usage a merchant of record bills is reported to it: network calls, so never in a dry run.
    if not summary.dry_run and PROVIDER_USAGE not in summary.skipped:
        record(PROVIDER_USAGE, provider_usage_report(as_of=as_of, batch_size=batch_size))


# What one item of each step is (the unit of --limit and of the progress bar).
_HANDLED = {
    TRIALS: ("trials_converted", "trials_canceled"),
    RENEWALS: ("renewed", "canceled"),
    "expiry": ("expired",),
    "collection": ("collected", "processing", "failed", "collection_skipped", "to_charge"),
    PROVIDER_USAGE: ("usage_reported",),
}
