"""The staff role groups: exactly the permissions each role needs, created once, kept up to date."""

from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import CommandError, call_command

from billing_project.tests.api_endpoints import PUBLIC_ENDPOINTS, api_endpoints
from billing_project.tests.api_support import token_client
from core.exceptions import InvalidOperation
from payments.models import PaymentMethod, PaymentStatus
from payments.seeding.roles import ROLES, RoleSpec, role_permissions, seed_role_groups
from payments.tests.factories import PaymentFactory
from subscriptions.api.permissions import staff_permissions_of
from subscriptions.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

API = [e for e in api_endpoints() if e.name not in PUBLIC_ENDPOINTS]


def _labels(group_name: str) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}"
            for p in Group.objects.get(name=group_name).permissions.select_related("content_type")}


def _api_permissions(*, reads: bool) -> set[str]:
    return {p for e in API if (e.method == "get") == reads for p in staff_permissions_of(e.requirement)}


def test_seed_creates_the_four_role_groups():
    outcome = seed_role_groups()
    assert outcome.created == ["administrator", "finance", "support", "auditor"]
    assert set(Group.objects.values_list("name", flat=True)) == {"administrator", "finance", "support", "auditor"}
    assert _labels("administrator") == {f"{p.content_type.app_label}.{p.codename}"
                                        for p in Permission.objects.select_related("content_type")}


def test_the_auditor_reads_everything_the_api_and_admin_show_and_changes_nothing():
    seed_role_groups()
    auditor = _labels("auditor")
    assert _api_permissions(reads=True) <= auditor
    assert all(p.split(".")[1].startswith("view_") for p in auditor)
    assert {"auth.view_user", "admin.view_logentry", "payments.view_providerevent"} <= auditor
    # API tokens and sessions are credentials: nobody but administrators sees them.
    assert not {p for p in auditor if p.startswith(("authtoken.", "sessions."))}


def test_finance_holds_the_money_actions_and_support_the_customer_ones():
    seed_role_groups()
    finance, support = _labels("finance"), _labels("support")
    money = {"payments.refund_payment", "payments.void_invoice", "payments.mark_invoice_paid",
             "payments.record_manual_payment", "payments.add_invoice", "payments.finalize_invoice",
             "credits.grant_credits", "credits.add_creditledgerentry"}
    assert money <= finance
    assert not {"subscriptions.cancel_subscription", "subscriptions.change_plan", "auth.change_user"} & finance
    assert {"subscriptions.cancel_subscription", "subscriptions.change_subscription", "subscriptions.add_customer",
            "subscriptions.change_customer", "credits.grant_credits"} <= support
    assert not (money - {"credits.grant_credits"}) & support
    assert "payments.view_providerevent" not in support
    # Both see what the API lets staff read (support apart from raw Stripe events, which it has no endpoint for,
    # the finance reports, which are finance's and the auditors', and the merchant's outbound webhook settings,
    # which are finance's).
    webhook_reads = {"outbound_webhooks.view_webhookendpoint", "outbound_webhooks.view_webhookdelivery"}
    assert _api_permissions(reads=True) <= finance
    assert _api_permissions(reads=True) - support == {"reports.view_reports", *webhook_reads}
    # Nobody but administrators deletes anything or edits the catalog.
    for role in ("finance", "support", "auditor"):
        assert not {p for p in _labels(role) if p.split(".")[1].startswith("delete_")}
        assert not {"subscriptions.add_plan", "subscriptions.change_plan", "usage.change_meter"} & _labels(role)


def test_every_api_write_is_held_by_some_role_other_than_administrator():
    seed_role_groups()
    held = _labels("finance") | _labels("support")
    # The catalog, ingestion (the customers' programs) and deletes (administrators only).
    assert _api_permissions(reads=False) - held == {"subscriptions.add_plan", "subscriptions.change_plan",
                                                    "usage.add_usageevent", "usage.delete_usagethreshold"}


def test_reseeding_creates_nothing_and_puts_edited_groups_back():
    seed_role_groups()
    finance = Group.objects.get(name="finance")
    finance.permissions.remove(Permission.objects.get(codename="refund_payment"))
    finance.permissions.add(Permission.objects.get(codename="delete_invoice"))
    groups = Group.objects.count()

    outcome = seed_role_groups()

    assert (outcome.created, outcome.updated) == ([], ["finance"])
    assert Group.objects.count() == groups
    assert "payments.refund_payment" in _labels("finance") and "payments.delete_invoice" not in _labels("finance")
    assert seed_role_groups().updated == []


def test_a_role_naming_an_unknown_permission_is_refused():
    typo = RoleSpec(name="typo", description="", permissions=("payments.refund_paymnet",))
    with pytest.raises(InvalidOperation, match="refund_paymnet"):
        role_permissions(role=typo)
    with pytest.raises(InvalidOperation, match="nope.view_"):
        role_permissions(role=RoleSpec(name="typo", description="", views_of=("nope",)))


def test_the_seed_command_creates_the_groups_and_reports_repairs(settings):
    settings.DEBUG = True
    call_command("seed", stdout=StringIO())
    assert Group.objects.filter(name__in=[r.name for r in ROLES]).count() == 4
    Group.objects.get(name="support").permissions.clear()
    out = StringIO()
    call_command("seed", stdout=out)
    assert "Staff role groups brought up to date: support." in out.getvalue()
    assert "Nothing to create" in out.getvalue()


def test_the_seed_command_fails_with_one_line_on_a_bad_role(monkeypatch, settings):
    settings.DEBUG = True
    monkeypatch.setattr("payments.seeding.roles.ROLES", (RoleSpec(name="x", description="", permissions=("a.b",)),))
    with pytest.raises(CommandError, match="unknown permissions: a.b"):
        call_command("seed", stdout=StringIO())


def test_role_members_get_through_the_api_what_their_role_allows():
    seed_role_groups()
    payment = PaymentFactory(method=PaymentMethod.CASH, status=PaymentStatus.SUCCEEDED)
    url = f"/api/v1/payments/{payment.pk}/refund/"
    answers = {}
    for role in ("finance", "support", "auditor"):
        user = UserFactory(username=f"{role}-member", is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        client = token_client(user)
        answers[role] = (client.get(f"/api/v1/payments/{payment.pk}/").status_code,
                         client.post(url, {"reason": "duplicate charge"}, format="json").status_code)
    assert answers == {"finance": (200, 201), "support": (200, 403), "auditor": (200, 403)}
