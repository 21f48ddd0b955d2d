"""CSV export of the credit ledger: from the API with the list's filters, and from the admin."""

import csv
import io

import pytest

from billing_project.tests.admin_helpers import post_action
from billing_project.tests.api_support import api_customer
from core.audit import Actor
from credits.models import CreditLedgerEntry
from credits.services import credit_grant

pytestmark = pytest.mark.django_db


def _csv(response) -> list[dict]:
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_credit_ledger_exports_from_the_api_and_the_admin(admin_client):
    caller = api_customer()
    credit_grant(customer=caller.customer, amount=100, source="purchase", actor=Actor.system("test"))
    rows = _csv(caller.client.get("/api/v1/credits/ledger/export/", {"kind": "grant"}))
    assert [(r["kind"], r["amount"], r["balance_after"]) for r in rows] == [("grant", "100", "100")]
    entries = CreditLedgerEntry.objects.all()
    assert len(_csv(post_action(admin_client, CreditLedgerEntry, "export_csv", entries, follow=False))) == 1
