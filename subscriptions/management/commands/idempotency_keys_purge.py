"""Cron: `manage.py idempotency_keys_purge --older-than-hours 24` forgets old API Idempotency-Keys."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from billing_project.exceptions import BillingError
from subscriptions.services import idempotency_keys_purge


class Command(BaseCommand):
    help = "Delete API Idempotency-Key records older than the retention (at least 24 hours)."

    def add_arguments(self, parser):
        parser.add_argument("--older-than-hours", type=int, default=24)

    def handle(self, *args, older_than_hours: int, **options):
        try:
            deleted = idempotency_keys_purge(older_than=timedelta(hours=older_than_hours))
        except BillingError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"{deleted} idempotency keys older than {older_than_hours} h deleted")
