"""The back office site: its title, who may enter, and the billing dashboard's page."""

import pytest

from billing_project.tests.admin_helpers import staff_user
from payments.tests.books import build_books

pytestmark = pytest.mark.django_db


def test_admin_is_titled_billing_back_office(admin_client):
    page = admin_client.get("/admin/").content.decode()

    assert "<title>Back office | Billing back office</title>" in page
    assert '<div id="site-name"><a href="/admin/">Billing back office</a></div>' in page
    assert 'href="/admin/dashboard/"' in page


def test_dashboard_shows_the_figures_formatted(admin_client):
    build_books()

    response = admin_client.get("/admin/dashboard/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "<title>Billing dashboard | Billing back office</title>" in page
    assert "20.00 USD" in page and "10.00 EUR" in page  # MRR
    assert '<td class="number" data-status="active">2</td>' in page
    assert "40.00 USD" in page and "15.00 USD" in page  # open, and past due
    assert "80.00 USD" in page and "70.00 USD" in page  # collected, and net of refunds
    assert '<td class="number figure">300</td>' in page  # credits outstanding


def test_dashboard_page_query_count_does_not_grow_with_data(admin_client, django_assert_max_num_queries):
    with django_assert_max_num_queries(8) as empty:
        admin_client.get("/admin/dashboard/")
    build_books()

    with django_assert_max_num_queries(len(empty.captured_queries)):
        response = admin_client.get("/admin/dashboard/")

    assert response.status_code == 200


def test_dashboard_is_for_staff_only(client):
    anonymous = client.get("/admin/dashboard/")
    client.force_login(staff_user(username="staff-without-permissions"))
    staff = client.get("/admin/dashboard/")

    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/admin/login/")
    assert staff.status_code == 200
