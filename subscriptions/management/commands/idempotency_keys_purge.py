"""Cron: `manage.py idempotency_keys_purge --older-than-hours 24` forgets old API Idempotency-Keys."""

from datetime import timedelta

from django.core.management.base import CommandError
from django.utils.translation import gettext as _

from core.command_args import parse_whole_number
from core.commands import LocalizedCommand
from core.exceptions import BillingError
from subscriptions.services import idempotency_keys_purge

MAX_RETENTION_HOURS = 24 * 366 * 100


class Command(LocalizedCommand):
    help = "Delete API Idempotency-Key records older than the retention (at least 24 hours)."

    def add_arguments(self, parser):
        # Parsed in handle(): a bad value is one CommandError line and exit status 1.
        parser.add_argument("--older-than-hours", default="24", help="At least 24; at most 100 years.")

    def handle(self, *args, older_than_hours: str, **options):
        older_than_hours = parse_whole_number(older_than_hours, option="--older-than-hours", minimum=24,
                                              maximum=MAX_RETENTION_HOURS)
        try:
            deleted = idempotency_keys_purge(older_than=timedelta(hours=older_than_hours))
        except BillingError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(_("%(deleted)s idempotency keys older than %(hours)s h deleted")
                          % {"deleted": deleted, "hours": older_than_hours})
