"""`manage.py billing run|preview|verify`: parses arguments and prints; the work is in payments.billing."""

import re
import sys

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.translation import gettext
from tqdm import tqdm

from core.command_args import INSTANT_HELP, parse_as_of, parse_text, parse_whole_number
from core.commands import LocalizedCommand
from core.exceptions import BillingError
from core.money import format_money
from core.safe_input import INTEGER_MAX
from payments.billing.forecast import MAX_FORECAST_DAYS, billing_forecast
from payments.billing.forecast_files import (
    forecast_diff,
    forecast_document,
    forecast_document_read,
    forecast_json,
    forecast_lines,
)
from payments.billing.preview import customer_find, invoice_preview, quantity_text
from payments.billing.rollup_groups import ROLLUP_GROUPS, rollups_rebuild
from payments.billing.run import billing_due_counts, billing_run
from payments.billing.verify import billing_verify

# A batch is one transaction's claim; more than this holds locks for minutes.
MAX_BATCH_SIZE = 100_000


class Command(LocalizedCommand):
    help = "Run the billing engine, preview a customer's next invoice, or verify totals against the ledgers."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="run|preview|verify|rollups-rebuild")
        run = sub.add_parser("run", help="Do everything due: trials, renewals, credit expiry, collection.")
        run.add_argument("--as-of", help=f"The instant to bill at ({INSTANT_HELP}); default now.")
        run.add_argument("--dry-run", action="store_true",
                         help="Compute and print the same summary, then roll everything back.")
        # Numbers are parsed in _run, so a bad one is one CommandError line and exit status 1.
        run.add_argument("--limit", help="Handle at most N items per step.")
        run.add_argument("--batch-size", help="Items claimed per transaction (BILLING_RUN_BATCH_SIZE).")
        run.add_argument("--no-progress", action="store_true", help="No progress bar.")
        preview = sub.add_parser("preview", help="Print a customer's upcoming invoice, or with --all every invoice "
                                                 "of the next N days, without writing.")
        preview.add_argument("customer", nargs="?", help="Customer id, email or external id.")
        preview.add_argument("--all", action="store_true", help="Every customer: the invoices of the next --days.")
        preview.add_argument("--days", help=f"With --all: days ahead (1-{MAX_FORECAST_DAYS}, default 30).")
        preview.add_argument("--currency", help="With --all: only customers billed in this ISO 4217 currency.")
        preview.add_argument("--as-of", help=f"With --all: the instant to forecast from ({INSTANT_HELP}); default now.")
        preview.add_argument("--json", action="store_true", help="With --all: print the forecast as JSON (what "
                                                                 "--diff reads).")
        preview.add_argument("--diff", metavar="FILE", help="With --all: compare with an earlier --json forecast.")
        sub.add_parser("verify", help="Recompute credit balances, invoice totals and the report rollups; non-zero "
                                      "exit on mismatch.")
        rebuild = sub.add_parser("rollups-rebuild", help="Write the report rollups from scratch from their sources "
                                                         "(the backfill for existing data).")
        rebuild.add_argument("--only", choices=sorted(ROLLUP_GROUPS), action="append",
                             help="Rebuild only this group (repeatable): mrr (MRR and churn), money (payment "
                                  "summary and revenue), credits, subscriptions (counts at a date). Default: "
                                  "every group.")

    def handle(self, *args, action: str, **options):
        try:
            return getattr(self, f"_{action.replace('-', '_')}")(**options)
        except BillingError as exc:
            raise CommandError(exc.message) from exc

    def _run(self, *, as_of=None, dry_run=False, limit=None, batch_size=None, no_progress=False, **_):
        when = parse_as_of(as_of) or timezone.now()
        if limit is not None:
            limit = parse_whole_number(limit, option="--limit", minimum=1, maximum=INTEGER_MAX)
        if batch_size is not None:
            batch_size = parse_whole_number(batch_size, option="--batch-size", minimum=1, maximum=MAX_BATCH_SIZE)
        show = not no_progress and sys.stderr.isatty()
        bar = None
        if show:
            bar = tqdm(total=sum(billing_due_counts(as_of=when).values()), unit="item", desc="billing",
                       file=sys.stderr)

        def progress(step: str, handled: int) -> None:
            if bar is not None:
                bar.set_postfix_str(step)
                bar.update(handled)
        try:
            summary = billing_run(as_of=when, dry_run=dry_run, limit=limit, batch_size=batch_size,
                                  progress=progress)
        finally:
            if bar is not None:
                bar.close()
        self.stdout.write(summary.line())

    def _preview(self, *, customer, all=False, **options):  # noqa: A002 - the option is --all
        if all == (customer is not None):
            raise CommandError(gettext("Give a customer, or --all for every customer (not both)."))
        if all:
            return self._forecast(**options)
        preview = invoice_preview(customer=customer_find(reference=parse_text(customer, option="customer")))
        who = preview.customer
        self.stdout.write(gettext("Upcoming invoice for %(name)s <%(email)s> (customer %(id)s)")
                          % {"name": who.name, "email": who.email, "id": who.pk})
        if preview.issue_at:
            self.stdout.write(gettext("Issued at: %(issued)s") % {"issued": preview.issue_at.isoformat()})
        for line in preview.lines:
            spec = line.spec
            self.stdout.write(f"  {spec.description:<60} {quantity_text(spec.quantity):>12} x "
                              f"{quantity_text(spec.unit_amount):>10}  {format_money(line.amount, who.currency):>16}")
        self.stdout.write(gettext("Subtotal: %(amount)s") % {"amount": format_money(preview.subtotal, who.currency)})
        self.stdout.write(gettext("Total: %(amount)s") % {"amount": format_money(preview.total, who.currency)})
        if preview.note:
            self.stdout.write(gettext("Note: %(note)s") % {"note": preview.note})

    def _forecast(self, *, days=None, currency=None, as_of=None, json=False, diff=None, **_):
        days = 30 if days is None else parse_whole_number(days, option="--days", minimum=1, maximum=MAX_FORECAST_DAYS)
        if currency is not None and not re.fullmatch(r"[A-Z]{3}", currency):
            raise CommandError(gettext("--currency takes an ISO 4217 code such as USD, not %(currency)s.")
                               % {"currency": repr(currency)})
        earlier = forecast_document_read(path=diff) if diff else None
        now = parse_as_of(as_of) or timezone.now()
        document = forecast_document(now=now, days=days,
                                     invoices=billing_forecast(now=now, days=days, currency=currency))
        if json:
            self.stdout.write(forecast_json(document))
        elif earlier is not None:
            for line in forecast_diff(earlier=earlier, current=document):
                self.stdout.write(line)
        else:
            for line in forecast_lines(document):
                self.stdout.write(line)

    def _verify(self, **_):
        mismatches = billing_verify()
        for mismatch in mismatches:
            self.stdout.write(mismatch.describe())
        if mismatches:
            raise CommandError(gettext("%(count)s mismatch(es) between stored figures and the ledgers.")
                               % {"count": len(mismatches)})
        self.stdout.write(gettext("Verified: every credit balance, grant and invoice total matches its ledger, and "
                                  "every report rollup its recomputation."))

    def _rollups_rebuild(self, *, only=None, **_):
        written = rollups_rebuild(groups=only)
        self.stdout.write(gettext("Rebuilt the report rollups: %(counts)s.")
                          % {"counts": ", ".join(f"{n} {name}" for name, n in written.items())})

