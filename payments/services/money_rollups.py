"""Writes of the money rollups (payments.money_models): PaymentDay and RevenueDay, per UTC day.

Every figure is defined once, here, as a row-level projection of its source table (`ROLLUPS`): the
writers, the rebuild, `billing verify` and the reports' partial first and last days all group the same
projections, so the rollups cannot drift from the definitions the reports had when they read the sources.

A writer names the source rows it is about to change (`money_rollups_track`, a context manager: their
grouped contribution is read before and after the change, and the difference added to the rollup rows in
one statement) or the rows it has just added (`money_rollups_add`). Each call is a constant number of
statements whatever the number of rows (the billing run's batches). Rows are changed by
`INSERT ... ON CONFLICT DO UPDATE SET x = x + excluded.x` in the unique key's order (day, currency, ...),
so concurrent writers lock rollup rows in one order, and each delta is one statement (no writer holds one
row while it waits for another it will change later)."""

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date

from django.db import connection
from django.db.models import BigIntegerField, Case, CharField, F, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce, TruncDate

from core.bulk import array_of
from core.increments import increments_add
from payments.models import Invoice, InvoiceStatus, Payment, PaymentDay, Refund, RefundStatus, RevenueDay
from payments.selectors.lists import COLLECTED_PAYMENT_STATUSES
from payments.services.mrr_rollups import BILLED_INVOICE_STATUSES
from subscriptions.models import Subscription


def _zero():
    return Value(0, output_field=BigIntegerField())


@dataclass(frozen=True)
class Source:
    """One source table's contribution to a rollup: which rows count, the instant that places them on a
    day, their key columns after the day, and an expression per figure (figures it does not feed are 0)."""

    name: str
    model: type
    where: Q
    time_field: str
    keys: tuple
    figures: dict

    def rows(self, *, rollup: "Rollup", where: Q, counted: bool = False) -> QuerySet:
        """Row-level: one row per source row, with the rollup's key and figure columns (k_*, x_*).
        `counted`: the rows count whatever `self.where` says (drafts being issued, see money_rollups_add)."""
        annotations = {"k_day": TruncDate(self.time_field, tzinfo=UTC)}
        annotations.update({f"k_{name}": expr for name, expr in zip(rollup.keys[1:], self.keys, strict=True)})
        annotations.update({f"x_{name}": self.figures.get(name, _zero()) for name in rollup.figures})
        return (self.model.objects.filter(Q() if counted else self.where, where).annotate(**annotations).order_by()
                .values_list(*[f"k_{k}" for k in rollup.keys], *[f"x_{f}" for f in rollup.figures]))


@dataclass(frozen=True)
class Rollup:
    model: type
    # The unique key, in lock order: (day, currency, method, status | plan_id).
    keys: tuple[str, ...]
    figures: tuple[str, ...]
    sources: tuple[Source, ...]

    @property
    def table(self) -> str:
        return self.model._meta.db_table

    def source(self, name: str) -> Source:
        return next(s for s in self.sources if s.name == name)


_PAYMENT_SUMMARY = Rollup(
    model=PaymentDay, keys=("day", "currency", "method", "status"), figures=("count", "amount", "amount_refunded"),
    sources=(Source(name="payment", model=Payment, where=Q(), time_field="created_at",
                    keys=(F("currency"), F("method"), F("status")),
                    figures={"count": Value(1, output_field=BigIntegerField()), "amount": F("amount"),
                             "amount_refunded": F("amount_refunded")}),))

_ONE = Value(1, output_field=BigIntegerField())
_REVENUE = Rollup(
    model=RevenueDay, keys=("day", "currency", "method", "plan_id"),
    figures=("invoices", "invoiced", "written_off", "payments", "collected", "refunds", "refunded"),
    sources=(
        Source(name="invoice", model=Invoice, where=Q(status__in=BILLED_INVOICE_STATUSES, issued_at__isnull=False),
               time_field="issued_at",
               keys=(F("currency"), Value("", output_field=CharField()), Coalesce(F("subscription__plan_id"), _zero())),
               figures={"invoices": _ONE, "invoiced": F("total"), "written_off": Case(
                   When(status=InvoiceStatus.UNCOLLECTIBLE, then=F("amount_due")), default=_zero())}),
        Source(name="payment", model=Payment,
               where=Q(status__in=COLLECTED_PAYMENT_STATUSES, succeeded_at__isnull=False), time_field="succeeded_at",
               keys=(F("currency"), F("method"), Coalesce(F("invoice__subscription__plan_id"), _zero())),
               figures={"payments": _ONE, "collected": F("amount")}),
        Source(name="refund", model=Refund, where=Q(status=RefundStatus.SUCCEEDED), time_field="created_at",
               keys=(F("currency"), F("payment__method"), Coalesce(F("payment__invoice__subscription__plan_id"),
                                                                   _zero())),
               figures={"refunds": _ONE, "refunded": F("amount")}),
    ))

ROLLUPS = {"payment_summary": _PAYMENT_SUMMARY, "revenue": _REVENUE}


def _day(value) -> date:
    # SQLite answers the truncated day as text.
    return date.fromisoformat(value) if isinstance(value, str) else value


def rollup_grouped_sql(*, rollup: Rollup, where: dict[str, Q], counted: bool = False) -> tuple[str, list]:
    """SELECT of the rollup rows (keys, then figures) the named sources' rows, each filtered by its Q, add
    up to. A source not named contributes nothing; `where` names at least one."""
    parts = [rollup.source(name).rows(rollup=rollup, where=q, counted=counted).query.sql_with_params()
             for name, q in where.items()]
    keys = ", ".join(f"k_{k}" for k in rollup.keys)
    sums = ", ".join(f"SUM(x_{f})" for f in rollup.figures)
    union = " UNION ALL ".join(sql for sql, _ in parts)
    # WHERE 1 = 1: SQLite reads an INSERT ... SELECT ... GROUP BY without a WHERE ambiguously.
    return (f"SELECT {keys}, {sums} FROM ({union}) AS contribution WHERE 1 = 1 GROUP BY {keys}",
            [p for _, params in parts for p in params])


def rollup_grouped(*, rollup: Rollup, where: dict[str, Q], counted: bool = False) -> dict[tuple, list[int]]:
    """The rollup rows the named sources' rows add up to, in one statement: {(day, currency, ...): [figures]}."""
    if not where:
        return {}
    sql, params = rollup_grouped_sql(rollup=rollup, where=where, counted=counted)
    grouped: dict[tuple, list[int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        width = len(rollup.keys)
        for row in cursor.fetchall():
            grouped[(_day(row[0]), *row[1:width])] = [int(v or 0) for v in row[width:]]
    return grouped


_ADD_SQL = """INSERT INTO {table} ({columns}) VALUES {values}
ON CONFLICT ({keys}) DO UPDATE SET {increments}"""


def rollup_rows_add(*, rollup: Rollup, deltas: dict[tuple, list[int]]) -> None:
    """Add each key's figures to its row (creating it), in key order, 1,000 rows per statement: now, or at the
    end of an `increments_deferred` block (the billing run's batch)."""
    increments_add(name=rollup.table, deltas=deltas,
                   write=lambda held: _rollup_rows_write(rollup=rollup, deltas=held))


def _rollup_rows_write(*, rollup: Rollup, deltas: dict[tuple, list[int]]) -> None:
    changed = sorted((key, figures) for key, figures in deltas.items() if any(figures))
    if not changed:
        return
    table = rollup.table
    increments = ", ".join(f"{f} = {table}.{f} + EXCLUDED.{f}" for f in rollup.figures)
    width = len(rollup.keys) + len(rollup.figures)
    with connection.cursor() as cursor:
        for start in range(0, len(changed), 1000):
            chunk = changed[start:start + 1000]
            values = ", ".join(["(" + ", ".join(["%s"] * width) + ")"] * len(chunk))
            cursor.execute(_ADD_SQL.format(table=table, columns=", ".join((*rollup.keys, *rollup.figures)),
                                           values=values, keys=", ".join(rollup.keys), increments=increments),
                           [v for key, figures in chunk for v in (*key, *figures)])


def _subtract(after: dict[tuple, list[int]], before: dict[tuple, list[int]]) -> dict[tuple, list[int]]:
    deltas: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(next(iter((after or before).values()))))
    for key, figures in after.items():
        deltas[key] = [a + b for a, b in zip(deltas[key], figures, strict=True)]
    for key, figures in before.items():
        deltas[key] = [a - b for a, b in zip(deltas[key], figures, strict=True)]
    return deltas


def _wheres(*, invoices: Q | None, payments: Q | None, refunds: Q | None) -> dict[str, dict[str, Q]]:
    """Which rollups and sources rows picked by these filters feed."""
    wheres: dict[str, dict[str, Q]] = {}
    if payments is not None:
        wheres["payment_summary"] = {"payment": payments}
    revenue = {name: q for name, q in (("invoice", invoices), ("payment", payments), ("refund", refunds))
               if q is not None}
    if revenue:
        wheres["revenue"] = revenue
    return wheres


_SUBSCRIPTION_PATHS = {"invoice": (Invoice, "subscription_id"), "payment": (Payment, "invoice__subscription_id"),
                       "refund": (Refund, "payment__invoice__subscription_id")}


def _subscriptions_lock(*, where: dict[str, Q]) -> None:
    """Lock (FOR UPDATE, id order, one statement) the subscriptions whose plan keys these rows' revenue.
    A plan change holds its subscription's lock while it moves the history between plan keys, so a
    writer that counts a row under a plan waits for it (and then reads the new plan), or makes it wait:
    the row is never counted under the old plan by one and again under the new by the other. Writers
    already lock the invoice or payment first and the subscription after (as settling an invoice does)."""
    picked = Q()
    for name, q in where.items():
        model, path = _SUBSCRIPTION_PATHS[name]
        picked |= Q(pk__in=model.objects.filter(q).exclude(**{f"{path}__isnull": True}).values(path))
    list(Subscription.objects.filter(picked).order_by("pk").select_for_update().values_list("pk", flat=True))


@contextmanager
def money_rollups_track(*, invoices: Q | None = None, payments: Q | None = None, refunds: Q | None = None,
                        only: tuple[str, ...] | None = None) -> Iterator[None]:
    """Keep the money rollups true across a change to the invoices, payments or refunds these filters
    pick (run it inside the change's transaction, with those rows locked or about to be written): their
    contribution is read before and after the block and the difference added. `only` narrows the rollups
    to the ones the caller knows can move ("payment_summary", "revenue")."""
    wheres = {name: w for name, w in _wheres(invoices=invoices, payments=payments, refunds=refunds).items()
              if only is None or name in only}
    if "revenue" in wheres:
        _subscriptions_lock(where=wheres["revenue"])
    before = {name: rollup_grouped(rollup=ROLLUPS[name], where=w) for name, w in wheres.items()}
    yield
    for name, w in wheres.items():
        after = rollup_grouped(rollup=ROLLUPS[name], where=w)
        if after or before[name]:
            rollup_rows_add(rollup=ROLLUPS[name], deltas=_subtract(after, before[name]))


def money_rollups_add(*, invoices: Q | None = None, payments: Q | None = None, refunds: Q | None = None,
                      only: tuple[str, ...] | None = None, issuing: bool = False) -> None:
    """Count rows just written (a payment, a refund). `issuing`: the invoices are drafts this transaction
    is about to open or mark paid without another change (the billing run's batch, whose numbering
    statement must stay the last before COMMIT while the invoice number counter is locked): they are
    counted as issued now; the caller holds their subscriptions' locks (the run's claims)."""
    for name, w in _wheres(invoices=invoices, payments=payments, refunds=refunds).items():
        if only is not None and name not in only:
            continue
        deltas = rollup_grouped(rollup=ROLLUPS[name], where=w, counted=issuing)
        if deltas and name == "revenue" and not issuing:
            # Counted under a plan: read again once no plan change of theirs can be under way (most new
            # payments are pending and count nothing here, so they skip the lock).
            _subscriptions_lock(where=w)
            deltas = rollup_grouped(rollup=ROLLUPS[name], where=w)
        rollup_rows_add(rollup=ROLLUPS[name], deltas=deltas)


@contextmanager
def money_rollups_plan_move(*, subscription_ids: list[int]) -> Iterator[None]:
    """Around a change of these subscriptions' plans (the caller holds their locks): revenue by plan keys
    a subscription's whole history (its invoices, their payments and refunds) by the plan it is on today,
    so the history moves keys."""
    if not subscription_ids:
        yield
        return
    ids = array_of(subscription_ids)
    with money_rollups_track(invoices=Q(subscription_id__in=ids), payments=Q(invoice__subscription_id__in=ids),
                             refunds=Q(payment__invoice__subscription_id__in=ids), only=("revenue",)):
        yield
