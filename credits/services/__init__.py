"""Writes to prepaid credits, split by subject; callers import from `credits.services`.

`ledger` holds the one-customer writes (grant, reversal, expiry, plan refill) and the rules they share,
`debits` the debit (the hot path), `batch` the billing run's writes for thousands of customers at once.
They depend one way: `batch` <- `ledger` <- `debits`."""

from credits.services.batch import (
    GrantSpec,
    credit_grants_bulk,
    credit_grants_expire_batch,
    credit_refill_key,
    credit_refill_spec,
    credit_refills_bulk,
)
from credits.services.debits import credit_debit
from credits.services.ledger import (
    CreditWrite,
    credit_balance_lock,
    credit_balances_lock,
    credit_debit_reverse,
    credit_grant,
    credit_grants_expire,
    credit_plan_refill,
)

__all__ = [
    "CreditWrite",
    "GrantSpec",
    "credit_balance_lock",
    "credit_balances_lock",
    "credit_debit",
    "credit_debit_reverse",
    "credit_grant",
    "credit_grants_bulk",
    "credit_grants_expire",
    "credit_grants_expire_batch",
    "credit_plan_refill",
    "credit_refill_key",
    "credit_refill_spec",
    "credit_refills_bulk",
]
