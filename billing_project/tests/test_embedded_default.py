"""End to end on the embedded default (SQLite, in-memory channel layer, local-memory cache), the way
`make run` starts it: every door of the app must work there too, not only on PostgreSQL.

The test process itself is bound to PostgreSQL, so everything runs in one `manage.py shell` subprocess
against a temporary SQLite file: the commands through call_command, one after the other as an operator
would type them, then the HTTP pass with Django's test client. One process, not one per command: each
start of Django costs about two seconds and proves nothing the first start did not."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Run inside the subprocess first: each command as the operator runs it; what each printed goes back to the
# test on one marked line. A command that fails ends the script non-zero, naming the step.
_COMMANDS = r'''
import contextlib, io, json, sys
from django.core.management import call_command

printed = []
for step in STEPS:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            call_command(*step, stdout=out)
    except BaseException as failure:
        sys.stderr.write(f"{' '.join(step[:3])}: {out.getvalue()[-2000:]}{failure!r}\n")
        raise
    printed.append(out.getvalue())
print("STEP OUTPUTS " + json.dumps(printed))
'''

# Then staff and a demo customer go through every door; any 5xx is printed and makes the script exit
# non-zero.
_HTTP_PASS = r'''
import json, sys
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import Token
from subscriptions.models import Customer

failures = []

def check(response, path, expected=None):
    bad = response.status_code >= 500 or (expected is not None and response.status_code != expected)
    if bad:
        failures.append(f"{path}: {response.status_code} {response.content[:300]!r}")
    return response

customer = Customer.objects.get(external_id="demo-customer-001")
token = Token.objects.get(user=customer.user).key
api = Client(HTTP_AUTHORIZATION=f"Token {token}")
batch = {"events": [
    {"meter": "api_calls", "idempotency_key": "smoke-1", "quantity": 3},
    {"meter": "api_calls", "idempotency_key": "smoke-2", "quantity": 2},
    {"meter": "api_calls", "idempotency_key": "smoke-1", "quantity": 3},
    {"meter": "active_users", "idempotency_key": "smoke-3", "properties": {"user_id": "u-1"}},
]}
first = check(api.post("/api/v1/usage/events/", batch, content_type="application/json"), "usage batch")
again = check(api.post("/api/v1/usage/events/", batch, content_type="application/json"), "usage batch again")
statuses = [[r["status"] for r in json.loads(response.content)["results"]] for response in (first, again)]
if statuses != [["created", "created", "duplicate", "created"], ["duplicate"] * 4]:
    failures.append(f"usage batch outcomes: {statuses}")
check(api.post("/api/v1/usage/events/", {"events": [{"meter": "nope", "idempotency_key": ""}]},
               content_type="application/json"), "bad usage batch", 400)
for path in ["/api/v1/plans/", "/api/v1/customers/", "/api/v1/subscriptions/", "/api/v1/invoices/",
             "/api/v1/payments/", "/api/v1/credits/balance/", "/api/v1/credits/ledger/", "/api/v1/credits/grants/",
             "/api/v1/usage/events/", "/api/v1/usage/summary/", "/api/v1/meters/", "/api/v1/entitlements/"]:
    check(api.get(path), path, 200)
debit = {"amount": 1, "reason": "smoke", "idempotency_key": "smoke-debit"}
for attempt in ("debit", "debit again"):
    check(api.post("/api/v1/credits/debit/", debit, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1"),
          attempt, 201)
check(api.post("/api/v1/credits/debit/", {"amount": 10**12}, content_type="application/json"), "overdraw", 402)
subscription = customer.subscriptions.get()
check(api.post(f"/api/v1/subscriptions/{subscription.pk}/change-plan/", {"plan": "no-such-plan"},
               content_type="application/json"), "change to a missing plan")
check(api.post(f"/api/v1/subscriptions/{subscription.pk}/cancel/", {"at_period_end": True},
               content_type="application/json"), "cancel at period end", 200)
anonymous = Client()
check(anonymous.get("/api/v1/invoices/"), "anonymous /api/v1/invoices/", 401)
check(anonymous.get("/api/schema/"), "/api/schema/", 200)
check(anonymous.get("/api/docs/"), "/api/docs/", 200)
check(anonymous.get("/healthz"), "/healthz", 200)

staff = Client()
staff.force_login(get_user_model().objects.get(username="staff"))
check(staff.get("/admin/"), "/admin/", 200)
check(staff.get("/admin/dashboard/"), "/admin/dashboard/", 200)
from payments.models import Invoice
invoice = Invoice.objects.exclude(number=None).order_by("pk").first()
check(staff.get(f"/invoices/{invoice.pk}/print/"), "invoice print", 200)
payment = customer.payments.filter(status="succeeded", method="stripe").first()
check(staff.post("/admin/payments/payment/", {"action": "refund", "_selected_action": [payment.pk]}),
      "refund action form")
check(staff.post("/admin/credits/creditgrant/", {"action": "grant_credits", "_selected_action": []}),
      "grant action without a selection")
check(anonymous.post("/webhooks/stripe/", "{}", content_type="application/json",
                     HTTP_STRIPE_SIGNATURE="t=1,v1=bad"), "unsigned webhook", 400)
# A signed delivery is stored and its apply job runs in process after the commit (no worker here).
from django.conf import settings
from payments.providers.stripe.models import StripeEvent
from payments.tests.stripe_support import WEBHOOK_SECRET, deliver, stripe_event
settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
hook = stripe_event("invoice.finalized", {"id": "in_embedded", "object": "invoice"})
check(deliver(anonymous, hook, apply=False), "signed webhook", 200)
if StripeEvent.objects.get(event_id=hook["id"]).status != "ignored":
    failures.append("a signed webhook was not applied in process")
from django.contrib import admin
from django.db.models import Count
for model, model_admin in admin.site._registry.items():
    meta = model._meta
    path = f"/admin/{meta.app_label}/{meta.model_name}/"
    check(staff.get(path), path, 200)
    check(staff.get(path, {"q": "demo"}), path + "?q=demo")
    first_row = model.objects.order_by("pk").first()
    if first_row is not None:
        check(staff.get(f"{path}{first_row.pk}/change/"), f"{path}{first_row.pk}/change/", 200)
# No worker here: jobs ran in process after each commit, so the invoices the runs issued were emailed.
from notifications.models import EmailLog
emails = dict(EmailLog.objects.filter(kind="invoice_finalized").values_list("status").annotate(n=Count("id")))
if not emails.get("sent") or set(emails) != {"sent"}:
    failures.append(f"invoice emails by status: {emails}")
print("\n".join(failures) or "all doors answered")
sys.exit(1 if failures else 0)
'''


def _manage(*args: str, database: Path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG"}}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**base, "DATABASE_URL": f"sqlite:///{database}"})


@pytest.mark.slow
def test_every_door_works_on_the_embedded_default(tmp_path):
    as_of = (datetime.now(UTC) + timedelta(days=50)).date().isoformat()
    steps = [
        ("migrate", "--noinput"),
        ("seed", "--demo", "3"),
        ("seed", "--demo", "3"),
        ("billing", "run", "--no-progress", "--as-of", as_of),
        ("billing", "run", "--no-progress", "--as-of", as_of),
        ("billing", "verify"),
        ("billing", "preview", "demo-customer-001"),
    ]
    script = f"STEPS = {steps!r}\n{_COMMANDS}\n{_HTTP_PASS}"

    result = _manage("shell", "-c", script, database=tmp_path / "embedded.sqlite3")

    assert result.returncode == 0, f"{result.stdout[-2000:]}{result.stderr[-3000:]}"
    [marked] = [line for line in result.stdout.splitlines() if line.startswith("STEP OUTPUTS ")]
    outputs = json.loads(marked.removeprefix("STEP OUTPUTS "))
    assert "curl -H 'Authorization: Token " in outputs[1]
    assert "Nothing to create" in outputs[2]
    assert "renewed" in outputs[3]
    assert "Verified" in outputs[5]
    assert "Upcoming invoice" in outputs[6]
    assert result.stdout.rstrip().endswith("all doors answered")
