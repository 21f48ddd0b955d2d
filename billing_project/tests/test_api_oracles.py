"""No existence oracle: naming another customer's object answers exactly like naming one that does not
exist, in every filter of every list (walked from the router), and uniqueness never leaks."""

import pytest
from django.db import models

from billing_project.api.router import router
from billing_project.tests.api_support import api_customer
from billing_project.tests.test_api_scoping import _other_customers_objects

NOT_THERE = 9_000_000_000


def _id_filters():
    """(list path, query parameter, related model) of every filter on a foreign key."""
    for pattern in router.urls:
        actions = getattr(pattern.callback, "actions", {})
        filterset = getattr(pattern.callback.cls, "filterset_class", None) if actions.get("get") == "list" else None
        if filterset is None or "<format>" in str(pattern.pattern):
            continue
        path = "/api/v1/" + str(pattern.pattern).lstrip("^").rstrip("$")
        model = filterset._meta.model
        for name, filter_ in filterset.base_filters.items():
            field = next((f for f in model._meta.get_fields() if f.name == filter_.field_name), None)
            if isinstance(field, models.ForeignKey | models.OneToOneField):
                yield path, name, field.related_model._meta.label


ID_FILTERS = list(_id_filters())


def test_the_walk_finds_the_foreign_key_filters():
    assert {("/api/v1/invoices/", "subscription"), ("/api/v1/payments/", "invoice"),
            ("/api/v1/credits/ledger/", "grant"), ("/api/v1/credits/orders/", "invoice")} <= {
        (path, name) for path, name, _ in ID_FILTERS}


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "param", "label"), ID_FILTERS)
def test_a_foreign_id_and_a_missing_id_answer_the_same_bytes(path, param, label):
    me = api_customer()
    other, ids = _other_customers_objects()
    foreign = {"subscriptions.Customer": other.customer.pk, "subscriptions.Subscription": other.subscription.pk,
               "payments.Invoice": ids["invoice"], "credits.CreditGrant": ids["credit-grant"],
               "subscriptions.Plan": other.plan.pk, "usage.Meter": None}.get(label)
    if foreign is None:
        pytest.skip(f"{label} rows are shared by every customer")
    theirs = me.client.get(path, {param: foreign})
    missing = me.client.get(path, {param: NOT_THERE})
    if label == "subscriptions.Plan":  # the catalog is public: only the status must not differ
        assert theirs.status_code == missing.status_code == 200
        return
    assert (theirs.status_code, theirs.content) == (missing.status_code, missing.content)
    assert theirs.status_code == 200 and theirs.json()["results"] == []


@pytest.mark.django_db
def test_a_customer_cannot_probe_other_customers_external_ids():
    me = api_customer()
    other = api_customer()
    other.customer.external_id = "crm-secret"
    other.customer.save()
    taken = me.client.patch(f"/api/v1/customers/{me.customer.pk}/", {"external_id": "crm-secret"}, format="json")
    free = me.client.patch(f"/api/v1/customers/{me.customer.pk}/", {"external_id": "crm-free"}, format="json")
    assert taken.status_code == free.status_code == 200
    assert taken.json()["external_id"] == free.json()["external_id"] == me.customer.external_id
