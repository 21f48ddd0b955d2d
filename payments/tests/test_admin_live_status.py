"""The admin's payment list and payment page carry the script that keeps status badges live, next to
the badges (rendered by the real PaymentAdmin) that the script updates."""

import pytest

from payments.tests.factories import PaymentFactory
from subscriptions.tests.factories import StaffUserFactory


@pytest.fixture
def staff_client(client):
    client.force_login(StaffUserFactory())
    return client


def assert_live_script(html: str) -> None:
    assert html.count("new WebSocket(url)") == 1
    assert '"/ws/payments/"' in html
    assert 'action: "subscribe", topic: "payments"' in html
    assert 'message.type === "payment.updated"' in html
    assert '.payment-status-badge[data-payment-id="' in html
    assert 'badge.className = "payment-status-badge status-" + payment.status' in html


@pytest.mark.django_db
def test_payment_changelist_renders_badges_and_the_live_script(staff_client):
    payment = PaymentFactory()
    response = staff_client.get("/admin/payments/payment/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<span class="payment-status-badge status-pending" data-payment-id="{payment.pk}">Pending</span>' in html
    assert_live_script(html)
    assert "admin/payments/payment/live_status.js.html" in [t.name for t in response.templates]


@pytest.mark.django_db
def test_payment_change_page_renders_the_live_script(staff_client):
    payment = PaymentFactory()
    response = staff_client.get(f"/admin/payments/payment/{payment.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-payment-id="{payment.pk}"' in html
    assert_live_script(html)


@pytest.mark.django_db
def test_other_admin_pages_do_not_open_the_payments_socket(staff_client):
    response = staff_client.get("/admin/")
    assert response.status_code == 200
    assert "/ws/payments/" not in response.content.decode()
