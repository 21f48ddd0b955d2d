"""`manage.py lemonsqueezy_events replay [--failed] [--since DATE]`: reprocess stored Lemon Squeezy webhook
events (payments.providers.lemonsqueezy.webhooks.services); exits 1 while any still fails."""

from django.core.management.base import CommandError
from django.utils.translation import gettext as _

from core.audit import Actor
from core.command_args import INSTANT_HELP, parse_optional_instant
from core.commands import LocalizedCommand
from payments.models import ProviderEventStatus
from payments.providers.lemonsqueezy.webhooks.services import lemonsqueezy_event_replay


class Command(LocalizedCommand):
    help = "Work with stored Lemon Squeezy webhook events."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        replay = sub.add_parser("replay", help="Reprocess stored events through the webhook handlers, oldest first.")
        replay.add_argument("--failed", action="store_true", help="Only events whose processing failed.")
        replay.add_argument("--since", help=f"Only events received at or after this instant ({INSTANT_HELP}).")

    def handle(self, *args, action, failed=False, since=None, **options):
        events = lemonsqueezy_event_replay(actor=Actor.system("lemonsqueezy-events-replay"), failed_only=failed,
                                           since=parse_optional_instant(since, option="--since"))
        still_failing = [e for e in events if e.status == ProviderEventStatus.FAILED]
        for event in events:
            self.stdout.write(f"{event.event_id} {event.type}: {event.status}")
        self.stdout.write(_("Replayed %(count)s event(s); %(failing)s still failing.")
                          % {"count": len(events), "failing": len(still_failing)})
        if still_failing:
            raise CommandError(_("%(count)s event(s) still fail; see their error in the admin.")
                               % {"count": len(still_failing)})
