"""The debit as one PL/pgSQL function, so a debit is one statement and one round trip (docs/decisions.md,
"A credit debit is one round trip").

The function locks the customer's balance row, then runs the statement that checks the idempotency key,
picks the grants in consumption order, takes from them, moves the balance and appends the ledger and
allocation rows. A VOLATILE function takes a fresh snapshot for each statement it runs, so under READ
COMMITTED that second statement sees every write of this customer committed before the lock was granted
(every credit writer locks the balance row first): the same guarantee the two statements sent one after
the other gave, without the second round trip, and in autocommit mode without BEGIN and COMMIT.

It writes nothing (and says why) for a replay, when a grant is due to expire (the general path writes the
expiry first), when the grants cannot cover the amount, and when the debit would cross one of
`p_watch_levels` (a level L
is crossed when the balance goes from above L to L or below): the caller then debits inside a transaction,
which also holds what the crossing sets off (the "credits low" email job and webhook event, the
credit-balance threshold alerts; credits/thresholds.py). SQLite has no PL/pgSQL: the embedded default takes
the general path and this migration does nothing there.
"""

from django.db import migrations

DEBIT_FUNCTION = """
CREATE OR REPLACE FUNCTION credits_debit(
    p_customer bigint, p_amount bigint, p_key varchar, p_now timestamptz, p_created_at timestamptz,
    p_actor integer, p_actor_label varchar, p_reason varchar, p_kind varchar, p_watch_levels bigint[])
RETURNS TABLE (out_entry_id bigint, out_balance_after bigint, out_replay_id bigint, out_expiry_due boolean,
               out_available bigint, out_level_crossed boolean)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    v_balance bigint;
    v_level_crossed boolean;
BEGIN
    SELECT b.balance INTO v_balance FROM credits_creditbalance AS b WHERE b.customer_id = p_customer FOR UPDATE;
    IF NOT FOUND THEN
        -- Never granted anything: nothing can be taken or replayed.
        RETURN QUERY SELECT NULL::bigint, NULL::bigint, NULL::bigint, false, 0::bigint, false;
        RETURN;
    END IF;
    v_level_crossed := EXISTS (SELECT 1 FROM unnest(p_watch_levels) AS level
                               WHERE v_balance > level AND v_balance - p_amount <= level);
    -- `spendable`: every grant a debit may take from, in consumption order (priority, earliest expiry with
    -- no expiry last, oldest), with the credits the grants before it hold; a grant takes what those left
    -- uncovered.
    RETURN QUERY
    WITH replay AS (
        SELECT l.id FROM credits_creditledgerentry AS l WHERE l.customer_id = p_customer AND l.idempotency_key = p_key
    ), expiry AS (
        SELECT EXISTS (SELECT 1 FROM credits_creditgrant AS g WHERE g.customer_id = p_customer AND g.remaining > 0
                       AND g.expires_at <= p_now) AS due
    ), spendable AS (
        SELECT g.id, g.remaining,
               (sum(g.remaining) OVER (ORDER BY g.priority, g.expires_at, g.created_at, g.id ROWS UNBOUNDED PRECEDING)
                - g.remaining)::bigint AS before,
               (sum(g.remaining) OVER ())::bigint AS available
        FROM credits_creditgrant AS g
        WHERE g.customer_id = p_customer AND g.remaining > 0 AND g.effective_at <= p_now
              AND (g.expires_at IS NULL OR g.expires_at > p_now)
    ), go AS (
        SELECT NOT EXISTS (SELECT 1 FROM replay) AND NOT (SELECT due FROM expiry) AND NOT v_level_crossed
               AND coalesce((SELECT max(s.available) FROM spendable AS s), 0) >= p_amount AS ok
    ), taken AS (
        UPDATE credits_creditgrant AS g SET remaining = g.remaining - least(s.remaining, p_amount - s.before)
        FROM spendable AS s, go
        WHERE go.ok AND g.id = s.id AND s.before < p_amount
        RETURNING g.id, least(s.remaining, p_amount - s.before) AS take
    ), balance AS (
        UPDATE credits_creditbalance AS b SET balance = b.balance - p_amount, updated_at = p_created_at
        WHERE b.customer_id = p_customer AND (SELECT ok FROM go)
        RETURNING b.balance
    ), entry AS (
        INSERT INTO credits_creditledgerentry (created_at, actor_id, actor_label, reason, customer_id, kind, amount,
                                               balance_after, grant_id, idempotency_key)
        SELECT p_created_at, p_actor, p_actor_label, p_reason, p_customer, p_kind, -p_amount, balance.balance, NULL,
               p_key
        FROM balance
        RETURNING id, balance_after
    ), allocation AS (
        INSERT INTO credits_creditallocation (entry_id, grant_id, amount)
        SELECT entry.id, taken.id, -taken.take FROM entry, taken
    )
    SELECT entry.id, entry.balance_after, (SELECT replay.id FROM replay), (SELECT expiry.due FROM expiry),
           coalesce((SELECT max(s.available) FROM spendable AS s), 0)::bigint, v_level_crossed
    FROM (SELECT 1) AS one LEFT JOIN entry ON true;
END
$fn$;
"""

DROP_FUNCTION = ("DROP FUNCTION IF EXISTS credits_debit(bigint, bigint, varchar, timestamptz, timestamptz, integer, "
                 "varchar, varchar, varchar, bigint[]);")


def create_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DEBIT_FUNCTION)


def drop_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_FUNCTION)


class Migration(migrations.Migration):

    dependencies = [
        ("credits", "0003_ledger_customer_index_covered_by_customer_recent"),
    ]

    operations = [migrations.RunPython(create_function, drop_function)]
