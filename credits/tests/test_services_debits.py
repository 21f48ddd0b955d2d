"""The debit's cost on PostgreSQL (statements and round trips) and the answers of its one-statement path;
its rules (consumption order, expiry first, refusals, replays) are pinned in test_services.py."""

import tempfile
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from psycopg.pq import Trace

from core.audit import Actor
from core.exceptions import IdempotencyConflict, InsufficientCredits
from credits.models import CreditAllocation, CreditBalance, CreditGrant, CreditLedgerEntry, CreditSource, LedgerKind
from credits.selectors import credit_balance_get, credit_balance_mismatches
from credits.services import credit_debit, credit_grant
from subscriptions.tests.factories import CustomerFactory, StaffUserFactory

NOW = datetime(2026, 3, 1, tzinfo=UTC)
ACTOR = Actor.system("test")


def give(customer, amount, *, priority=100, expires_at=None):
    return credit_grant(customer=customer, amount=amount, source=CreditSource.PURCHASE, actor=ACTOR,
                        priority=priority, effective_at=NOW - timedelta(days=10), expires_at=expires_at,
                        ).entry.grant_id


@contextmanager
def round_trips():
    """Counts the round trips of the test's connection as libpq sees them: every exchange the server
    ends with ReadyForQuery, so BEGIN and COMMIT count as well as each statement."""
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    counted = {"round_trips": 0, "messages": []}
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
        try:
            yield counted
        finally:
            pgconn.untrace()
            trace.seek(0)
            lines = trace.read().splitlines()
    counted["messages"] = [line.split("\t", 3)[-1] for line in lines if line.startswith("F\t")]
    counted["round_trips"] = sum(1 for line in lines if line.startswith("B\t") and "\tReadyForQuery\t" in line)


@pytest.mark.django_db
def test_a_debit_inside_a_transaction_is_one_statement_and_no_savepoint():
    """CaptureQueriesContext records what Django executes: here the one call of the debit function, which
    locks the balance row and takes the credits. The test runs inside pytest-django's transaction, as a
    debit inside a caller's transaction (usage batches) does, so no BEGIN or COMMIT is sent and none is
    counted; a savepoint would show as SAVEPOINT and RELEASE SAVEPOINT statements. The balance stays above
    CREDITS_LOW_THRESHOLD: crossing it adds the statement deferring the email (pinned below)."""
    customer = CustomerFactory()
    give(customer, 1000)

    with CaptureQueriesContext(connection) as context:
        write = credit_debit(customer=customer, amount=30, actor=ACTOR, idempotency_key="req-1", now=NOW)

    statements = [q["sql"] for q in context.captured_queries]
    assert len(statements) == 1
    assert statements[0].startswith("SELECT * FROM credits_debit(")
    assert not [s for s in statements if "SAVEPOINT" in s]
    assert (write.balance, write.replayed, write.entry.amount) == (970, False, -30)


@pytest.mark.django_db(transaction=True)
def test_a_debit_one_grant_covers_is_one_round_trip_and_its_own_transaction():
    """On its own (the API's debit, in autocommit), a debit is 1 round trip: the one statement is its
    whole transaction, so psycopg sends no BEGIN and no COMMIT. Counted from libpq's protocol trace, so a
    BEGIN or COMMIT would be counted."""
    customer = CustomerFactory()
    give(customer, 1000)

    with round_trips() as counted:
        credit_debit(customer=customer, amount=30, actor=ACTOR, idempotency_key="req-1", now=NOW)

    assert counted["round_trips"] == 1
    assert not [m for m in counted["messages"] if '"BEGIN"' in m or '"COMMIT"' in m]
    assert credit_balance_get(customer=customer) == 970


@pytest.mark.django_db(transaction=True)
def test_a_debit_spanning_grants_on_its_own_is_still_one_round_trip():
    customer = CustomerFactory()
    give(customer, 10, expires_at=NOW + timedelta(days=5))
    give(customer, 10)

    with round_trips() as counted:
        write = credit_debit(customer=customer, amount=15, actor=ACTOR, now=NOW)

    assert counted["round_trips"] == 1
    assert CreditAllocation.objects.filter(entry_id=write.entry.pk).count() == 2
    assert credit_balance_mismatches() == []


@pytest.mark.django_db
def test_a_debit_crossing_the_low_credit_threshold_adds_only_its_email_job_and_webhook_statements(settings):
    settings.CREDITS_LOW_THRESHOLD = 100
    customer = CustomerFactory()
    give(customer, 150)

    with CaptureQueriesContext(connection) as context:
        write = credit_debit(customer=customer, amount=60, actor=ACTOR, now=NOW)

    statements = [q["sql"] for q in context.captured_queries]
    # The debit and the email job; which outbound webhook endpoints want credits.low is known to the process
    # already (none here: outbound_webhooks.selectors keeps it in memory).
    assert len(statements) == 2
    assert "procrastinate" in statements[1]
    assert write.balance == 90


@pytest.mark.django_db(transaction=True)
def test_a_debit_on_its_own_crossing_the_threshold_commits_its_email_job_in_its_transaction(settings):
    """In autocommit the statement holds back a debit that crosses the threshold (it writes nothing), and
    the debit is redone in a transaction with its email job: the job cannot be lost to a crash between
    two commits, nor sent for a debit that did not commit."""
    settings.CREDITS_LOW_THRESHOLD = 100
    customer = CustomerFactory()
    give(customer, 150)

    with round_trips() as counted:
        write = credit_debit(customer=customer, amount=60, actor=ACTOR, idempotency_key="req-1", now=NOW)

    messages = counted["messages"]
    begin = next(i for i, m in enumerate(messages) if '"BEGIN"' in m)
    commit = next(i for i, m in enumerate(messages) if '"COMMIT"' in m)
    debits = [i for i, m in enumerate(messages) if "credits_debit(" in m]
    jobs = [i for i, m in enumerate(messages) if "procrastinate" in m]
    assert len(debits) == 2 and debits[0] < begin < debits[1] < jobs[0] < commit
    assert write.balance == 90
    assert CreditLedgerEntry.objects.filter(customer=customer, kind=LedgerKind.DEBIT).count() == 1
    assert connection.get_autocommit()


@pytest.mark.django_db(transaction=True)
def test_a_debit_on_its_own_that_stays_above_or_below_the_threshold_is_not_held_back(settings):
    settings.CREDITS_LOW_THRESHOLD = 100
    customer = CustomerFactory()
    give(customer, 300)

    with round_trips() as above:
        credit_debit(customer=customer, amount=100, actor=ACTOR, now=NOW)
    credit_debit(customer=customer, amount=150, actor=ACTOR, now=NOW)  # crosses: 200 -> 50
    with round_trips() as below:
        write = credit_debit(customer=customer, amount=10, actor=ACTOR, now=NOW)

    assert above["round_trips"] == below["round_trips"] == 1
    assert write.balance == 40


@pytest.mark.django_db
def test_a_debit_spanning_grants_is_still_one_statement_and_allocates_in_consumption_order():
    customer = CustomerFactory()
    later = give(customer, 10, expires_at=NOW + timedelta(days=60))
    sooner = give(customer, 10, expires_at=NOW + timedelta(days=5))
    never = give(customer, 10)
    promotion = give(customer, 5, priority=0)

    with CaptureQueriesContext(connection) as context:
        write = credit_debit(customer=customer, amount=22, actor=ACTOR, now=NOW)

    assert len(context.captured_queries) == 1
    assert dict(CreditAllocation.objects.filter(entry_id=write.entry.pk).values_list("grant_id", "amount")) == {
        promotion: -5, sooner: -10, later: -7}
    assert dict(CreditGrant.objects.values_list("id", "remaining")) == {
        promotion: 0, sooner: 0, later: 3, never: 10}
    assert write.balance == 13
    assert credit_balance_mismatches() == []


@pytest.mark.django_db
def test_the_returned_entry_is_the_stored_row():
    staff = StaffUserFactory()
    customer = CustomerFactory()
    give(customer, 50)

    write = credit_debit(customer=customer, amount=7, actor=Actor.of_user(staff), reason="export",
                         idempotency_key="req-9", now=NOW)

    stored = CreditLedgerEntry.objects.get(pk=write.entry.pk)
    fields = ["id", "customer_id", "kind", "amount", "balance_after", "grant_id", "reason", "actor_id",
              "actor_label", "idempotency_key", "created_at"]
    assert [getattr(write.entry, f) for f in fields] == [getattr(stored, f) for f in fields]
    assert (stored.kind, stored.actor_id, stored.reason) == (LedgerKind.DEBIT, staff.pk, "export")
    assert CreditBalance.objects.get(customer=customer).balance == stored.balance_after == 43


@pytest.mark.django_db
def test_a_customer_never_granted_anything_is_refused_and_gets_no_balance_row():
    customer = CustomerFactory()

    with pytest.raises(InsufficientCredits) as short:
        credit_debit(customer=customer, amount=1, actor=ACTOR, now=NOW)

    assert short.value.extra == {"balance": 0, "required": 1}
    assert not CreditBalance.objects.filter(customer=customer).exists()


@pytest.mark.django_db
def test_a_refusal_inside_a_transaction_leaves_that_transaction_usable():
    customer = CustomerFactory()
    give(customer, 5)

    with transaction.atomic():
        with pytest.raises(InsufficientCredits):
            credit_debit(customer=customer, amount=6, actor=ACTOR, now=NOW)
        write = credit_debit(customer=customer, amount=5, actor=ACTOR, now=NOW)

    assert write.balance == 0
    assert CreditLedgerEntry.objects.filter(customer=customer).aggregate(s=Sum("amount"))["s"] == 0


@pytest.mark.django_db
def test_a_replay_through_the_statement_returns_the_first_entry_and_another_amount_conflicts():
    customer = CustomerFactory()
    give(customer, 20)
    first = credit_debit(customer=customer, amount=8, actor=ACTOR, idempotency_key="req-1", now=NOW)

    again = credit_debit(customer=customer, amount=8, actor=ACTOR, idempotency_key="req-1", now=NOW)
    with pytest.raises(IdempotencyConflict):
        credit_debit(customer=customer, amount=9, actor=ACTOR, idempotency_key="req-1", now=NOW)

    assert again.replayed and again.entry.pk == first.entry.pk and again.balance == 12
    assert credit_balance_get(customer=customer) == 12


def _grant_updates() -> tuple[int, int]:
    """(updates, HOT updates) of the grants table in this transaction, as PostgreSQL's statistics count them."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_get_xact_tuples_updated(%s::regclass), "
                       "pg_stat_get_xact_tuples_hot_updated(%s::regclass)", [CreditGrant._meta.db_table] * 2)
        return cursor.fetchone()


@pytest.mark.django_db
def test_a_debit_leaving_credits_in_its_grant_updates_it_in_place_and_one_emptying_it_moves_it_out_of_the_index():
    """No index of the grants is on `remaining`, even through a partial index's predicate, so a debit's UPDATE
    is HOT (no new index entries, no new page) until `spendable` turns false and the grant leaves the
    consumption-order and expiry indexes."""
    customer = CustomerFactory()
    grant_id = give(customer, 10)
    updated, hot = _grant_updates()
    credit_debit(customer=customer, amount=3, actor=ACTOR, now=NOW)
    assert _grant_updates() == (updated + 1, hot + 1)
    assert CreditGrant.objects.get(pk=grant_id).spendable is True
    credit_debit(customer=customer, amount=7, actor=ACTOR, now=NOW)
    assert _grant_updates() == (updated + 2, hot + 1)
    assert CreditGrant.objects.filter(pk=grant_id, remaining=0, spendable=False).exists()


@pytest.mark.django_db
def test_no_index_of_the_grants_reads_remaining():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass "
                       "AND pg_get_indexdef(indexrelid) LIKE '%%remaining%%'", [CreditGrant._meta.db_table])
        assert cursor.fetchall() == []
