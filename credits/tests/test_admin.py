"""The credits back office: the read-only ledger, grants and balances, and the "grant credits" action
on customers, which calls credits.services.credit_grant."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing_project.tests.admin_helpers import (
    action_names,
    build_business,
    change_url,
    changelist_after_growth,
    changelist_and_change_page,
    changelist_url,
    messages_of,
    post_action,
    staff_user,
    view_permissions,
)
from credits.models import CreditAllocation, CreditBalance, CreditGrant, CreditLedgerEntry, LedgerKind
from subscriptions.models import Customer

pytestmark = pytest.mark.django_db

MODELS = [CreditBalance, CreditGrant, CreditLedgerEntry, CreditAllocation]
READ_ONLY_MODELS = [CreditBalance, CreditLedgerEntry, CreditAllocation]
TOKEN = "0b7f3c11-6d1c-4a35-9d0e-6f0c5c4b1b1f"


@pytest.fixture
def business():
    return build_business(3)


def grant_form(**overrides) -> dict:
    form = {"amount": "250", "source": "promotion", "priority": "10", "expires_at_0": "", "expires_at_1": "",
            "reason": "sorry for the outage", "token": TOKEN}
    return {**form, **overrides}


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_changelist_and_change_page_renders_with_data(admin_client, business, model):
    changelist, change = changelist_and_change_page(admin_client, model)

    assert changelist.status_code == 200
    assert change.status_code == 200


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_query_count_does_not_grow_with_rows(admin_client, django_assert_max_num_queries, model):
    response = changelist_after_growth(admin_client, django_assert_max_num_queries, model)

    assert response.status_code == 200


def test_ledger_search_by_customer_email(admin_client, business):
    response = admin_client.get(changelist_url(CreditLedgerEntry), {"q": "acme1@example.com"})

    entries = list(response.context["cl"].result_list)
    assert entries and {e.customer.email for e in entries} == {"acme1@example.com"}


def test_balance_filter_lists_customers_holding_credits(admin_client, business):
    empty = Customer.objects.create(name="Empty", email="empty@example.com")
    CreditBalance.objects.create(customer=empty)

    response = admin_client.get(changelist_url(CreditBalance), {"has_credits": "no"})

    assert [b.customer_id for b in response.context["cl"].result_list] == [empty.pk]


def test_customer_list_shows_credit_balance(admin_client, business):
    page = admin_client.get(changelist_url(Customer)).content.decode()

    assert '<td class="field-credits">1050</td>' in page  # paid: plan refill 1000 + 50 welcome
    assert '<td class="field-credits">50</td>' in page


def test_grant_credits_shows_intermediate_form_first(admin_client, business):
    customer = business.customers[0]

    response = post_action(admin_client, Customer, "grant_credits", [customer])

    assert response.status_code == 200
    assert response.templates[0].name == "admin/billing/action_form.html"
    assert set(response.context["form"].fields) == {"token", "amount", "source", "priority", "expires_at", "reason"}
    assert CreditGrant.objects.filter(customer=customer).count() == 2


def test_grant_credits_action_grants_through_service_with_ledger_row(admin_client, business):
    customers = business.customers[:2]
    expires = timezone.now() + timedelta(days=30)

    response = post_action(admin_client, Customer, "grant_credits", customers, apply=True,
                           **grant_form(expires_at_0=expires.strftime("%Y-%m-%d"), expires_at_1="12:00:00"))

    assert messages_of(response) == ["Granted 250 credits to 2 customer(s)."]
    for customer in customers:
        entry = CreditLedgerEntry.objects.filter(customer=customer, kind=LedgerKind.GRANT).latest("id")
        assert (entry.amount, entry.reason, entry.actor_label, entry.actor.username) == (
            250, "sorry for the outage", "admin", "admin")
        assert (entry.grant.source, entry.grant.priority, entry.grant.remaining) == ("promotion", 10, 250)
        assert entry.grant.expires_at.date() == expires.date()
        assert CreditBalance.objects.get(customer=customer).balance == entry.balance_after


def test_grant_credits_form_submitted_twice_grants_once(admin_client, business):
    customer = business.customers[1]

    post_action(admin_client, Customer, "grant_credits", [customer], apply=True, **grant_form())
    post_action(admin_client, Customer, "grant_credits", [customer], apply=True, **grant_form())

    assert CreditLedgerEntry.objects.filter(customer=customer, reason="sorry for the outage").count() == 1
    assert CreditBalance.objects.get(customer=customer).balance == 300


def test_grant_credits_expiring_in_past_shows_error_and_changes_nothing(admin_client, business):
    customer = business.customers[1]
    entries_before = CreditLedgerEntry.objects.count()

    response = post_action(admin_client, Customer, "grant_credits", [customer], apply=True,
                           **grant_form(expires_at_0="2020-01-01", expires_at_1="00:00:00"))

    assert response.status_code == 200
    assert messages_of(response) == [f"{customer}: A grant must expire after it takes effect."]
    assert CreditLedgerEntry.objects.count() == entries_before
    assert CreditBalance.objects.get(customer=customer).balance == 50


def test_grant_credits_with_invalid_amount_shows_form_again(admin_client, business):
    customer = business.customers[1]

    response = post_action(admin_client, Customer, "grant_credits", [customer], apply=True, **grant_form(amount="0"))

    assert response.status_code == 200
    assert "amount" in response.context["form"].errors
    assert CreditBalance.objects.get(customer=customer).balance == 50


def test_staff_without_permission_neither_sees_nor_runs_grant(client, business):
    client.force_login(staff_user(*view_permissions("subscriptions", "credits"), "subscriptions.change_customer"))
    customer = business.customers[1]

    listing = client.get(changelist_url(Customer))
    response = post_action(client, Customer, "grant_credits", [customer], apply=True, **grant_form())

    assert listing.status_code == 200 and response.status_code == 200
    assert "grant_credits" not in action_names(listing)
    assert CreditBalance.objects.get(customer=customer).balance == 50
    assert not CreditLedgerEntry.objects.filter(actor_label="limited-staff").exists()


def test_staff_with_grant_permission_can_grant(client, business):
    client.force_login(staff_user(*view_permissions("subscriptions", "credits"), "credits.grant_credits"))
    customer = business.customers[1]

    post_action(client, Customer, "grant_credits", [customer], apply=True, **grant_form())

    assert CreditLedgerEntry.objects.filter(customer=customer, actor_label="limited-staff", amount=250).exists()


@pytest.mark.parametrize("model", READ_ONLY_MODELS, ids=lambda m: m.__name__)
def test_ledger_models_refuse_add_change_and_delete(admin_client, business, model):
    obj = model.objects.first()
    before = model.objects.count()
    prefix = f"/admin/credits/{model._meta.model_name}"

    assert admin_client.get(f"{prefix}/add/").status_code == 403
    assert admin_client.post(change_url(obj), {"amount": "1", "balance": "1"}).status_code == 403
    assert admin_client.post(f"{prefix}/{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    assert model.objects.count() == before
    # Reading is all a ledger offers: the export of the rows, nothing that writes.
    assert action_names(admin_client.get(changelist_url(model))) <= {"export_csv"}


def test_grant_amounts_cannot_be_edited(admin_client, business):
    grant = CreditGrant.objects.filter(customer=business.customers[1]).get()

    assert admin_client.get("/admin/credits/creditgrant/add/").status_code == 403
    admin_client.post(change_url(grant), {"remaining": "9999", "amount": "9999", "description": "note",
                                          "allocations-TOTAL_FORMS": "0", "allocations-INITIAL_FORMS": "0"})

    grant.refresh_from_db()
    assert (grant.amount, grant.remaining) == (50, 50)
