"""The credits report's rollup (CreditLedgerDay), and the debit function (migration 0004) adding to it in
its one statement. Data written before this migration is summed by `manage.py billing rollups-rebuild`.
SQLite has no PL/pgSQL: there the general debit path adds to the rollup (credits.rollups)."""

from django.db import migrations, models


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
    ), day_rollup AS (
        -- The credits report's day (CreditLedgerDay), in this statement: no round trip more. The shard is
        -- the customer id mod 64, so concurrent debits of different customers rarely share a row.
        INSERT INTO credits_creditledgerday AS d (day, currency, shard, granted, purchased, used, expired,
                                                  refunded, adjusted)
        SELECT date_trunc('day', p_created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', c.currency,
               mod(p_customer, 64)::smallint, 0, 0, -p_amount, 0, 0, 0
        FROM entry JOIN subscriptions_customer AS c ON c.id = p_customer
        ON CONFLICT (day, currency, shard) DO UPDATE SET used = d.used + EXCLUDED.used
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

def create_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DEBIT_FUNCTION)


def restore_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from importlib import import_module

        schema_editor.execute(import_module("credits.migrations.0004_debit_function").DEBIT_FUNCTION)


class Migration(migrations.Migration):

    dependencies = [
        ('credits', '0005_translatable_verbose_names'),
    ]

    operations = [
        migrations.CreateModel(
            name='CreditLedgerDay',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateTimeField(verbose_name='day')),
                ('currency', models.CharField(max_length=3, verbose_name='currency')),
                ('shard', models.SmallIntegerField(verbose_name='shard')),
                ('granted', models.BigIntegerField(default=0, verbose_name='granted')),
                ('purchased', models.BigIntegerField(default=0, verbose_name='purchased')),
                ('used', models.BigIntegerField(default=0, verbose_name='used')),
                ('expired', models.BigIntegerField(default=0, verbose_name='expired')),
                ('refunded', models.BigIntegerField(default=0, verbose_name='refunded')),
                ('adjusted', models.BigIntegerField(default=0, verbose_name='adjusted')),
            ],
            options={
                'verbose_name': 'credit ledger day',
                'verbose_name_plural': 'credit ledger days',
                'constraints': [models.UniqueConstraint(fields=('day', 'currency', 'shard'), name='credit_ledger_day_once')],
            },
        ),
        migrations.RunPython(create_function, restore_function),
    ]
