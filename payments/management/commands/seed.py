"""manage.py seed [--demo N] [--as-of DATE]: plans, meters, a staff login, the staff role groups
(administrator, finance, support, auditor) and optional demo customers.

Safe to run any number of times: rows are found or created by natural keys, so a second run creates
nothing. The staff account comes from SEED_STAFF_USERNAME / SEED_STAFF_PASSWORD (default staff /
billing-demo; with DEBUG off there is no default password, so production never gets a guessable
superuser). An existing account's password is never reset, and printed only while it still is the
configured one.
"""

import os

from django.conf import settings
from django.core.management.base import CommandError
from django.utils.translation import gettext as _

from core.command_args import INSTANT_HELP, parse_as_of, parse_whole_number
from core.commands import LocalizedCommand
from core.exceptions import BillingError
from payments.seeding.run import MAX_DEMO_CUSTOMERS, SEED_LABELS, SeedReport, seed_run

ADMIN_URL = "http://127.0.0.1:8000/admin/"
ENTITLEMENTS_URL = "http://127.0.0.1:8000/api/v1/entitlements/"
DEFAULT_STAFF_PASSWORD = "billing-demo"


class Command(LocalizedCommand):
    help = ("Create the plan catalog, its meters, a staff login and the staff role groups; with --demo N also N "
            "demo customers.")

    def add_arguments(self, parser):
        # Strings, validated in handle(): a bad value then fails with one clear line, not argparse's usage.
        parser.add_argument("--demo", default="0", metavar="N",
                            help="also create demo customers 1..N with months of history (default 0)")
        parser.add_argument("--as-of", default=None, metavar="DATE",
                            help=f"the 'now' the demo history ends at ({INSTANT_HELP}; default now)")

    def handle(self, *args, **options):
        demo = parse_whole_number(options["demo"], option="--demo", minimum=0, maximum=MAX_DEMO_CUSTOMERS)
        as_of = parse_as_of(options["as_of"])
        try:
            report = seed_run(
                demo=demo, as_of=as_of,
                staff_username=os.environ.get("SEED_STAFF_USERNAME", "staff"),
                staff_password=os.environ.get("SEED_STAFF_PASSWORD") or (DEFAULT_STAFF_PASSWORD if settings.DEBUG
                                                                         else None),
            )
        except BillingError as exc:
            raise CommandError(exc.message) from exc
        self._print(report)

    def _print(self, report: SeedReport) -> None:
        # Translators: one count of the seed's summary, "3 plans" (the label is already translated).
        created = ", ".join(_("%(count)s %(label)s") % {"count": n, "label": SEED_LABELS[label]}
                            for label, n in report.created.items() if n)
        self.stdout.write(_("Created: %(rows)s.") % {"rows": created} if created
                          else _("Nothing to create: everything was already there."))
        if report.demo_customers_created or report.demo_customers_existing:
            self.stdout.write(_("Demo customers: %(created)s created, %(existing)s already there.")
                              % {"created": report.demo_customers_created, "existing": report.demo_customers_existing})
        if report.arabic_demo_customers_created:
            self.stdout.write(_("Arabic-speaking demo customers (YER, SAR): %(created)s created.")
                              % {"created": report.arabic_demo_customers_created})
        # Statuses are the machine values (active, paid), as everywhere a status is named in text.
        for title, counts in ((_("Subscriptions by status: %(counts)s"), report.subscriptions_by_status),
                              (_("Invoices by status: %(counts)s"), report.invoices_by_status),
                              (_("Payments by status: %(counts)s"), report.payments_by_status)):
            if counts:
                self.stdout.write(title % {"counts": ", ".join(f"{s} {n}" for s, n in counts.items())})
        if report.roles.updated:
            self.stdout.write(_("Staff role groups brought up to date: %(groups)s.")
                              % {"groups": ", ".join(report.roles.updated)})
        staff = report.staff
        username = staff.user.get_username()
        if staff.shown_password is not None:
            self.stdout.write(self.style.SUCCESS(
                _("Staff login: %(url)s  user: %(username)s  password: %(password)s")
                % {"url": ADMIN_URL, "username": username, "password": staff.shown_password}))
        else:
            self.stdout.write(self.style.SUCCESS(
                _("Staff login: %(url)s  user: %(username)s  (password not shown: it is not "
                  "SEED_STAFF_PASSWORD or its default)")
                % {"url": ADMIN_URL, "username": username}))
        if report.example_token:
            self.stdout.write(_("Demo API call: curl -H 'Authorization: Token %(token)s' %(url)s")
                              % {"token": report.example_token, "url": ENTITLEMENTS_URL})
