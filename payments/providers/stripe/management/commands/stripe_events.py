from django.core.management.base import CommandError
from django.utils.translation import gettext as _

from core.audit import Actor
from core.command_args import INSTANT_HELP, parse_optional_instant, parse_text
from core.commands import LocalizedCommand
from payments.models import ProviderEventStatus
from payments.providers.stripe.webhooks.services import stripe_event_replay


class Command(LocalizedCommand):
    help = "Work with stored Stripe webhook events."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        replay = sub.add_parser("replay", help="Reprocess stored events through the webhook handlers, oldest first.")
        replay.add_argument("--failed", action="store_true", help="Only events whose processing failed.")
        replay.add_argument("--since", help=f"Only events received at or after this instant ({INSTANT_HELP}).")
        replay.add_argument("--id", dest="event_id", help="Only this Stripe event id (evt_...).")

    def handle(self, *args, action, failed=False, since=None, event_id=None, **options):
        since_at = parse_optional_instant(since, option="--since")
        if event_id is not None:
            event_id = parse_text(event_id, option="--id")
        events = stripe_event_replay(actor=Actor.system("stripe-events-replay"), failed_only=failed, since=since_at,
                                     event_id=event_id)
        if event_id and not events:
            raise CommandError(_("No stored event %(event_id)s.") % {"event_id": event_id})
        still_failing = [e for e in events if e.status == ProviderEventStatus.FAILED]
        for event in events:
            self.stdout.write(f"{event.event_id} {event.type}: {event.status}")
        self.stdout.write(_("Replayed %(count)s event(s); %(failing)s still failing.")
                          % {"count": len(events), "failing": len(still_failing)})
        if still_failing:
            raise CommandError(_("%(count)s event(s) still fail; see their error in the admin.")
                               % {"count": len(still_failing)})
