from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from payments.models import ProviderEvent, ProviderEventStatus
from payments.providers.stripe.models import StripeEvent
from payments.tests.factories import StripeCustomerFactory
from payments.tests.stripe_support import new_id, setup_intent_object, stripe_account_id, stripe_event

pytestmark = pytest.mark.django_db


def stored(event: dict, *, status=ProviderEventStatus.FAILED, received_at=None) -> StripeEvent:
    row = StripeEvent.objects.create(event_id=event["id"], type=event["type"], payload=event, status=status,
                                     attempts=1, error="ReferenceNotFound: earlier",
                                     provider_created_at=datetime.fromtimestamp(event["created"], tz=UTC))
    if received_at:
        StripeEvent.objects.filter(pk=row.pk).update(received_at=received_at)
    return row


def card_saved(customer, payment_method: str) -> dict:
    return stripe_event("setup_intent.succeeded", setup_intent_object(
        id=new_id("seti"), customer=stripe_account_id(customer), payment_method=payment_method))


def test_replay_failed_reprocesses_only_failed_events():
    customer = StripeCustomerFactory(stripe_customer_id=new_id("cus"))
    failed = stored(card_saved(customer, "pm_failed_before"))
    processed = stored(card_saved(customer, "pm_other"), status=ProviderEventStatus.PROCESSED)
    out = StringIO()

    call_command("stripe_events", "replay", "--failed", stdout=out)

    failed.refresh_from_db()
    processed.refresh_from_db()
    assert failed.status == ProviderEventStatus.PROCESSED and failed.attempts == 2
    assert processed.attempts == 1
    assert "Replayed 1 event(s); 0 still failing." in out.getvalue()


def test_replay_and_the_admin_inbox_see_only_stripe_s_rows_of_the_shared_inbox(admin_client):
    customer = StripeCustomerFactory(stripe_customer_id=new_id("cus"))
    ours = stored(card_saved(customer, "pm_ours"))
    theirs = ProviderEvent.objects.create(provider="paypal", event_id="WH-1", type="PAYMENT.CAPTURE.COMPLETED",
                                          payload={}, status=ProviderEventStatus.FAILED, attempts=1)
    out = StringIO()

    call_command("stripe_events", "replay", "--failed", stdout=out)
    listed = admin_client.get("/admin/payments_stripe/stripeevent/").context["cl"].result_list

    theirs.refresh_from_db()
    assert "Replayed 1 event(s)" in out.getvalue() and theirs.attempts == 1
    assert [event.pk for event in listed] == [ours.pk]
    assert StripeEvent.objects.get(pk=ours.pk).provider == "stripe"


def test_replay_since_and_by_id():
    customer = StripeCustomerFactory(stripe_customer_id=new_id("cus"))
    old = stored(card_saved(customer, "pm_old"), received_at=datetime.now(UTC) - timedelta(days=3))
    recent = stored(card_saved(customer, "pm_recent"))

    call_command("stripe_events", "replay", "--since", (datetime.now(UTC) - timedelta(days=1)).date().isoformat(),
                 stdout=StringIO())
    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.attempts == 1 and recent.attempts == 2

    call_command("stripe_events", "replay", "--id", old.event_id, stdout=StringIO())
    old.refresh_from_db()
    assert old.attempts == 2 and old.status == ProviderEventStatus.PROCESSED


def test_replay_exits_non_zero_while_events_still_fail():
    event = stored(stripe_event("setup_intent.succeeded", setup_intent_object(
        id=new_id("seti"), customer=new_id("cus"), payment_method="pm_x", metadata={"customer_id": "424242"})))

    with pytest.raises(CommandError, match="still fail"):
        call_command("stripe_events", "replay", "--failed", stdout=StringIO())

    event.refresh_from_db()
    assert event.status == ProviderEventStatus.FAILED and event.attempts == 2


@pytest.mark.parametrize("args, message", [
    (["--since", "yesterday"], "--since takes an ISO date"),
    (["--id", "evt_missing"], "No stored event evt_missing"),
])
def test_bad_arguments_exit_with_one_clear_line(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("stripe_events", "replay", *args, stdout=StringIO())
