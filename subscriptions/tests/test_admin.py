"""The customers, plans and subscriptions back office: pages, inlines limited to recent rows, search,
the cancel actions and their permission, and the read-only subscription history."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing_project.tests.admin_helpers import (
    ACTOR,
    action_names,
    build_business,
    change_form_data,
    change_url,
    changelist_after_growth,
    changelist_and_change_page,
    changelist_url,
    messages_of,
    post_action,
    staff_user,
    view_permissions,
)
from payments.providers.manual.services import payment_record_manual
from subscriptions.models import Customer, Plan, Subscription, SubscriptionEvent, SubscriptionEventKind
from subscriptions.services import subscription_cancel
from subscriptions.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

MODELS = [Customer, Plan, Subscription, SubscriptionEvent]


@pytest.fixture
def business():
    return build_business(3)


def live_subscription(business) -> Subscription:
    return Subscription.objects.filter(pk__in=[s.pk for s in business.subscriptions], status="active").first()


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_changelist_and_change_page_renders_with_data(admin_client, business, model):
    changelist, change = changelist_and_change_page(admin_client, model)

    assert changelist.status_code == 200
    assert change.status_code == 200


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_query_count_does_not_grow_with_rows(admin_client, django_assert_max_num_queries, model):
    response = changelist_after_growth(admin_client, django_assert_max_num_queries, model)

    assert response.status_code == 200


def test_customer_search_by_email_and_name(admin_client, business):
    by_email = admin_client.get(changelist_url(Customer), {"q": "acme2@example.com"})
    by_name = admin_client.get(changelist_url(Customer), {"q": "Acme 1"})

    assert [c.email for c in by_email.context["cl"].result_list] == ["acme2@example.com"]
    assert [c.name for c in by_name.context["cl"].result_list] == ["Acme 1"]


def test_subscription_search_by_customer_email(admin_client, business):
    response = admin_client.get(changelist_url(Subscription), {"q": "acme1@example.com"})

    assert [s.customer.email for s in response.context["cl"].result_list] == ["acme1@example.com"]


def test_customer_page_shows_subscriptions_credit_balance_and_only_recent_payments(admin_client, business):
    customer = business.customers[1]  # its invoice is open: pay it in twelve instalments
    invoice = business.invoices[1]
    payments = [payment_record_manual(customer=customer, invoice=invoice, amount=100, method="cash",
                                      reference=f"INSTALMENT-{n:02d}", actor=ACTOR) for n in range(12)]

    response = admin_client.get(change_url(customer))

    page = response.content.decode()
    assert response.status_code == 200
    inlines = {f.opts.model.__name__: f.formset for f in response.context["inline_admin_formsets"]}
    assert [s.pk for s in inlines["Subscription"].get_queryset()] == [business.subscriptions[1].pk]
    assert "<p>Incomplete</p>" in page  # 12.00 of 29.99 paid: not active yet
    assert [b.balance for b in inlines["CreditBalance"].get_queryset()] == [50]
    assert "<p>50</p>" in page
    shown = [n for n in range(12) if f"INSTALMENT-{n:02d}" in page]
    assert shown == list(range(2, 12))  # the ten most recent
    assert [p.pk for p in inlines["Payment"].get_queryset()] == [p.pk for p in reversed(payments[2:])]


def test_customer_page_still_saves_with_recent_payment_inline(admin_client, business):
    customer = business.customers[0]

    data = change_form_data(admin_client.get(change_url(customer)), name="Acme Renamed")
    response = admin_client.post(change_url(customer), data)

    customer.refresh_from_db()
    assert response.status_code == 302
    assert customer.name == "Acme Renamed"
    assert customer.currency == "USD"


def test_customer_currency_is_fixed_once_created(admin_client, business):
    customer = business.customers[0]

    data = change_form_data(admin_client.get(change_url(customer)), currency="EUR")
    admin_client.post(change_url(customer), data)

    customer.refresh_from_db()
    assert customer.currency == "USD"


def test_customer_can_be_added_in_admin(admin_client):
    response = admin_client.post("/admin/subscriptions/customer/add/", {
        "name": "Walk-in", "name_ar": "زبون عابر", "email": "walkin@example.com", "currency": "EUR",
        "preferred_language": "ar", "metadata": "{}",
        "subscriptions-TOTAL_FORMS": "0", "subscriptions-INITIAL_FORMS": "0",
        "credit_balance-TOTAL_FORMS": "0", "credit_balance-INITIAL_FORMS": "0",
        "payments-TOTAL_FORMS": "0", "payments-INITIAL_FORMS": "0",
        "provider_accounts-TOTAL_FORMS": "0", "provider_accounts-INITIAL_FORMS": "0",
    })

    assert response.status_code == 302
    walk_in = Customer.objects.get(email="walkin@example.com")
    assert (walk_in.currency, walk_in.preferred_language, walk_in.name_ar) == ("EUR", "ar", "زبون عابر")


def test_plan_list_shows_price_and_live_subscriber_count(admin_client, business):
    page = admin_client.get(changelist_url(Plan)).content.decode()

    assert "29.99 USD" in page
    assert '<td class="field-live_subscriptions">3</td>' in page


def test_subscription_page_shows_its_events(admin_client, business):
    subscription = live_subscription(business)

    page = admin_client.get(change_url(subscription)).content.decode()

    assert "subscription created" in page
    assert "invoice paid" in page


def test_cancel_now_action_cancels_through_service(admin_client, business):
    subscription = live_subscription(business)

    response = post_action(admin_client, Subscription, "cancel_now", [subscription])

    subscription.refresh_from_db()
    assert messages_of(response) == ["Canceled 1 subscription(s)."]
    assert subscription.status == "canceled" and subscription.ended_at is not None
    event = subscription.events.get(to_status="canceled")
    assert (event.from_status, event.actor_label, event.actor.username) == ("active", "admin", "admin")


def test_cancel_at_period_end_action_schedules_cancellation(admin_client, business):
    subscription = live_subscription(business)

    post_action(admin_client, Subscription, "cancel_at_period_end", [subscription])

    subscription.refresh_from_db()
    assert subscription.status == "active" and subscription.cancel_at_period_end
    assert subscription.events.filter(kind=SubscriptionEventKind.CANCEL_SCHEDULED, actor_label="admin").exists()


def test_cancel_of_canceled_subscription_shows_error_and_changes_nothing(admin_client, business):
    subscription = live_subscription(business)
    subscription_cancel(subscription=subscription, actor=ACTOR, now=timezone.now() - timedelta(days=1))
    subscription.refresh_from_db()
    events_before = subscription.events.count()

    response = post_action(admin_client, Subscription, "cancel_now", [subscription])

    assert response.status_code == 200
    assert messages_of(response) == [f"{subscription}: The subscription is already canceled."]
    canceled_at = subscription.canceled_at
    subscription.refresh_from_db()
    assert subscription.canceled_at == canceled_at
    assert subscription.events.count() == events_before


@pytest.mark.parametrize("action", ["cancel_now", "cancel_at_period_end"])
def test_staff_without_permission_neither_sees_nor_runs_cancel(client, business, action):
    client.force_login(staff_user(*view_permissions("subscriptions"), "subscriptions.change_subscription"))
    subscription = live_subscription(business)

    listing = client.get(changelist_url(Subscription))
    response = post_action(client, Subscription, action, [subscription])

    subscription.refresh_from_db()
    assert listing.status_code == 200 and response.status_code == 200
    assert action not in action_names(listing)
    assert subscription.status == "active" and not subscription.cancel_at_period_end
    assert not subscription.events.filter(actor_label="limited-staff").exists()


def test_staff_with_cancel_permission_can_cancel(client, business):
    client.force_login(staff_user(*view_permissions("subscriptions"), "subscriptions.cancel_subscription"))
    subscription = live_subscription(business)

    assert action_names(client.get(changelist_url(Subscription))) == {"cancel_now", "cancel_at_period_end"}
    post_action(client, Subscription, "cancel_now", [subscription])

    subscription.refresh_from_db()
    assert subscription.status == "canceled"
    assert subscription.events.filter(to_status="canceled", actor_label="limited-staff").exists()


def test_subscription_status_and_plan_cannot_be_changed_in_form(admin_client, business):
    subscription = live_subscription(business)
    other_plan = Plan.objects.create(code="other", name="Other", amount=1)

    data = change_form_data(admin_client.get(change_url(subscription)), status="canceled", plan=str(other_plan.pk),
                            metadata='{"crm": "42"}')
    response = admin_client.post(change_url(subscription), data)

    subscription.refresh_from_db()
    assert response.status_code == 302
    assert (subscription.status, subscription.plan.code, subscription.metadata) == ("active", "acme-pro",
                                                                                    {"crm": "42"})


def test_subscriptions_are_not_added_or_deleted_by_hand(admin_client, business):
    subscription = live_subscription(business)

    assert admin_client.get("/admin/subscriptions/subscription/add/").status_code == 403
    assert admin_client.post(f"/admin/subscriptions/subscription/{subscription.pk}/delete/",
                             {"post": "yes"}).status_code == 403
    assert Subscription.objects.filter(pk=subscription.pk).exists()


def test_subscription_events_refuse_add_change_and_delete(admin_client, business):
    event = SubscriptionEvent.objects.first()
    before = SubscriptionEvent.objects.count()

    assert admin_client.get("/admin/subscriptions/subscriptionevent/add/").status_code == 403
    assert admin_client.post(change_url(event), {"reason": "rewritten"}).status_code == 403
    assert admin_client.post(f"/admin/subscriptions/subscriptionevent/{event.pk}/delete/",
                             {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.reason != "rewritten"
    assert SubscriptionEvent.objects.count() == before
    assert action_names(admin_client.get(changelist_url(SubscriptionEvent))) == set()


def test_customer_without_credit_balance_row_renders(admin_client):
    customer = CustomerFactory()

    response = admin_client.get(change_url(customer))

    assert response.status_code == 200
