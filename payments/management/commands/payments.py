"""`manage.py payments reconcile --provider NAME [--since DATE] [--until DATE] [--fix]`: parses arguments
and prints; the work is in payments.reconciliation. Exits 1 while any drift remains."""

from datetime import timedelta

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.translation import gettext

from core.audit import Actor
from core.command_args import INSTANT_HELP, parse_optional_instant, parse_text
from core.commands import LocalizedCommand
from core.exceptions import BillingError
from payments.reconciliation import reconcile_compare, reconcile_fix, reconcile_rail

# Without --since: the last 30 days (PayPal's Transaction Search reaches back three years; a month covers
# what a daily cron run could have missed).
DEFAULT_WINDOW = timedelta(days=30)


class Command(LocalizedCommand):
    help = "Payment operations across rails: reconcile a provider's payments and refunds with ours."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="reconcile")
        reconcile = sub.add_parser("reconcile", help="List every drift between a provider and our books.")
        reconcile.add_argument("--provider", required=True,
                               help="The rail's code (PAYMENT_PROVIDERS); it must offer reconciliation.")
        reconcile.add_argument("--since", help=f"Start of the window ({INSTANT_HELP}); default 30 days ago.")
        reconcile.add_argument("--until", help=f"End of the window ({INSTANT_HELP}); default now.")
        reconcile.add_argument("--fix", action="store_true",
                               help="Apply the provider's state through the state machine where it can be.")

    def handle(self, *args, action: str, **options):
        try:
            return getattr(self, f"_{action}")(**options)
        except BillingError as exc:
            raise CommandError(exc.message) from exc

    def _reconcile(self, *, provider, since=None, until=None, fix=False, **_):
        code = parse_text(provider, option="--provider")
        until_at = parse_optional_instant(until, option="--until") or timezone.now()
        since_at = parse_optional_instant(since, option="--since") or until_at - DEFAULT_WINDOW
        if since_at >= until_at:
            raise CommandError(gettext("--since must be before --until."))
        rail = reconcile_rail(code=code)
        drifts = reconcile_compare(rail=rail, since=since_at, until=until_at)
        if fix and drifts:
            fixed = reconcile_fix(rail=rail, drifts=drifts, actor=Actor.system("payments-reconcile"))
            for drift in fixed:
                self.stdout.write(gettext("fixed %(line)s") % {"line": drift.line()})
            drifts = reconcile_compare(rail=rail, since=since_at, until=until_at)
        for drift in drifts:
            self.stdout.write(drift.line())
        window = f"{since_at.isoformat()} .. {until_at.isoformat()}"
        if drifts:
            raise CommandError(gettext("%(count)s drift(s) remain between %(code)s and our books for %(window)s.")
                               % {"count": len(drifts), "code": rail.code, "window": window})
        self.stdout.write(gettext("%(code)s and our books agree for %(window)s.")
                          % {"code": rail.code, "window": window})
