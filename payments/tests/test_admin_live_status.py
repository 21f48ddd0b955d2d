"""The admin's payment list and payment page carry the script that keeps status badges live.

The test mounts its own admin site, with a PaymentAdmin rendering badges the way the real one does,
so it pins the templates in templates/admin/payments/payment/ whatever admin.py registers.
"""

import pytest
from django.contrib import admin
from django.urls import path
from django.utils.html import format_html

from payments.models import Payment
from payments.tests.factories import PaymentFactory
from subscriptions.tests.factories import StaffUserFactory

# The admin's URL namespace is "admin"; this site takes it for the duration of the tests below.
live_site = admin.AdminSite(name="admin")


@admin.register(Payment, site=live_site)
class BadgePaymentAdmin(admin.ModelAdmin):
    list_display = ["id", "badge"]
    readonly_fields = ["badge"]
    fields = ["amount", "badge"]

    @admin.display(description="status")
    def badge(self, payment):
        return format_html('<span class="payment-status-badge status-{}" data-payment-id="{}">{}</span>',
                           payment.status, payment.pk, payment.get_status_display())


urlpatterns = [path("admin/", live_site.urls)]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Factories set passwords; the production hasher would make every user cost a second here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def staff_client(client, settings):
    settings.ROOT_URLCONF = __name__
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
