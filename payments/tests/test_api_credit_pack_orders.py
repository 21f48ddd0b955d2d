"""`credits/orders/`: credit packs bought on account through the API."""

import pytest

from billing_project.tests.api_support import api_customer, staff_client
from payments.models import CreditPackOrder, CreditPackOrderStatus
from subscriptions.tests.factories import CustomerFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db
ORDERS = "/api/v1/credits/orders/"


def test_a_customer_orders_a_pack_at_the_catalog_price_and_sees_it_pending():
    caller = api_customer()
    response = caller.client.post(ORDERS, {"pack": "credits-500"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: body[k] for k in ("customer", "pack", "credits", "amount", "currency", "status", "invoice")} == {
        "customer": caller.customer.pk, "pack": "credits-500", "credits": 500, "amount": 2000, "currency": "USD",
        "status": "pending", "invoice": None}
    listed = caller.client.get(ORDERS).json()
    assert [row["id"] for row in listed["results"]] == [body["id"]]


def test_an_unknown_pack_is_a_400_in_the_error_shape():
    caller = api_customer()
    response = caller.client.post(ORDERS, {"pack": "credits-7"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_credit_pack"
    assert not CreditPackOrder.objects.exists()


def test_a_customer_without_a_subscription_is_told_why():
    caller = api_customer(subscribed=False)
    response = caller.client.post(ORDERS, {"pack": "credits-100"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_renewal_to_bill"


def test_staff_order_for_the_customer_they_name_and_must_name_one():
    customer = CustomerFactory()
    SubscriptionFactory(customer=customer)
    client = staff_client()
    assert client.post(ORDERS, {"pack": "credits-100"}, format="json").status_code == 400
    response = client.post(ORDERS, {"pack": "credits-100", "customer": customer.pk}, format="json")
    assert response.status_code == 201 and response.json()["customer"] == customer.pk
    order = CreditPackOrder.objects.get()
    assert order.actor.is_staff and order.actor_label == order.actor.get_username()


def test_cancel_while_pending_then_a_second_cancel_is_a_409():
    caller = api_customer()
    order_id = caller.client.post(ORDERS, {"pack": "credits-100"}, format="json").json()["id"]
    first = caller.client.post(f"{ORDERS}{order_id}/cancel/", {}, format="json")
    assert first.status_code == 200 and first.json()["status"] == "canceled"
    again = caller.client.post(f"{ORDERS}{order_id}/cancel/", {}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "illegal_transition"
    assert CreditPackOrder.objects.get(pk=order_id).status == CreditPackOrderStatus.CANCELED


def test_a_repeated_order_with_one_idempotency_key_places_one_order():
    caller = api_customer()
    first = caller.client.post(ORDERS, {"pack": "credits-100"}, format="json", HTTP_IDEMPOTENCY_KEY="o-1")
    again = caller.client.post(ORDERS, {"pack": "credits-100"}, format="json", HTTP_IDEMPOTENCY_KEY="o-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert CreditPackOrder.objects.count() == 1


def test_the_list_is_cursor_paginated_and_filtered_by_status():
    caller = api_customer()
    ids = [caller.client.post(ORDERS, {"pack": "credits-100"}, format="json").json()["id"] for _ in range(3)]
    caller.client.post(f"{ORDERS}{ids[0]}/cancel/", {}, format="json")
    page = caller.client.get(f"{ORDERS}?page_size=2").json()
    assert [row["id"] for row in page["results"]] == ids[:0:-1] and "cursor=" in page["next"]
    rest = caller.client.get(page["next"]).json()
    assert [row["id"] for row in rest["results"]] == [ids[0]]
    pending = caller.client.get(f"{ORDERS}?status=pending").json()["results"]
    assert sorted(row["id"] for row in pending) == ids[1:]
