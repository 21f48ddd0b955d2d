"""The metering back office: meters and prices are catalog; usage events are immutable."""

import pytest

from billing_project.tests.admin_helpers import (
    action_names,
    build_business,
    change_url,
    changelist_after_growth,
    changelist_and_change_page,
    changelist_url,
)
from subscriptions.models import Plan
from usage.models import Meter, MeterPrice, UsageEvent

pytestmark = pytest.mark.django_db

MODELS = [Meter, MeterPrice, UsageEvent]


@pytest.fixture
def business():
    business = build_business(3)
    MeterPrice.objects.create(plan=Plan.objects.get(code="acme-pro"), meter=business.meter, unit_amount="0.04",
                              included_units=1000)
    return business


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_changelist_and_change_page_renders_with_data(admin_client, business, model):
    changelist, change = changelist_and_change_page(admin_client, model)

    assert changelist.status_code == 200
    assert change.status_code == 200


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_query_count_does_not_grow_with_rows(admin_client, django_assert_max_num_queries, model):
    response = changelist_after_growth(admin_client, django_assert_max_num_queries, model)

    assert response.status_code == 200


def test_usage_search_by_idempotency_key_and_customer(admin_client, business):
    by_key = admin_client.get(changelist_url(UsageEvent), {"q": "acme-2"})
    by_email = admin_client.get(changelist_url(UsageEvent), {"q": "acme1@example.com"})

    assert [e.idempotency_key for e in by_key.context["cl"].result_list] == ["acme-2"]
    assert [e.customer.email for e in by_email.context["cl"].result_list] == ["acme1@example.com"]


def test_meter_page_shows_plan_prices(admin_client, business):
    page = admin_client.get(change_url(business.meter)).content.decode()

    assert "0.040000" in page and "Pro" in page


def test_usage_events_refuse_add_change_and_delete(admin_client, business):
    event = UsageEvent.objects.first()
    before = UsageEvent.objects.count()

    page = admin_client.get(change_url(event))

    assert admin_client.get("/admin/usage/usageevent/add/").status_code == 403
    assert admin_client.post(change_url(event), {"quantity": "1000"}).status_code == 403
    assert admin_client.post(f"/admin/usage/usageevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.quantity == 1
    assert UsageEvent.objects.count() == before
    assert 'name="_save"' not in page.content.decode()
    assert action_names(admin_client.get(changelist_url(UsageEvent))) == {"export_csv"}  # reading only
