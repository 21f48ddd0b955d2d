import pytest

from payments.models import StripeEvent, StripeEventStatus
from payments.tests.stripe_support import new_id, setup_intent_object, stripe_event
from subscriptions.tests.factories import CustomerFactory, StaffUserFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed_event():
    customer = CustomerFactory(stripe_customer_id=new_id("cus"))
    event = stripe_event("setup_intent.succeeded", setup_intent_object(
        id=new_id("seti"), customer=customer.stripe_customer_id, payment_method="pm_from_admin"))
    return StripeEvent.objects.create(event_id=event["id"], type=event["type"], payload=event,
                                      status=StripeEventStatus.FAILED, attempts=1, error="earlier failure")


def test_staff_reprocess_action_runs_the_event_again(client, failed_event):
    staff = StaffUserFactory()
    client.force_login(staff)

    response = client.post("/admin/payments/stripeevent/", {"action": "reprocess",
                                                             "_selected_action": [failed_event.pk]})

    failed_event.refresh_from_db()
    assert response.status_code == 302
    assert failed_event.status == StripeEventStatus.PROCESSED and failed_event.attempts == 2
    assert failed_event.payload["data"]["object"]["payment_method"] == "pm_from_admin"


def test_events_are_read_only_in_the_admin(client, failed_event):
    client.force_login(StaffUserFactory())

    assert client.get("/admin/payments/stripeevent/").status_code == 200
    assert client.get(f"/admin/payments/stripeevent/{failed_event.pk}/change/").status_code == 200
    assert client.get("/admin/payments/stripeevent/add/").status_code == 403
    assert client.post(f"/admin/payments/stripeevent/{failed_event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert StripeEvent.objects.filter(pk=failed_event.pk).exists()


def test_staff_without_change_permission_cannot_reprocess(client, failed_event):
    from django.contrib.auth.models import Permission

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_stripeevent"))
    client.force_login(viewer)

    client.post("/admin/payments/stripeevent/", {"action": "reprocess", "_selected_action": [failed_event.pk]})

    failed_event.refresh_from_db()
    assert failed_event.attempts == 1
