"""Step 3 of the run: credit grants whose expiry has come get their expiry ledger rows, one batch of
customers (claimed with SKIP LOCKED on their balance rows) per transaction. The customers are listed
once per run (`credit_customers_with_grants_due`) and the list is cut into batches."""

from datetime import datetime

from django.db import transaction

from core.audit import Actor
from credits.services import credit_grants_expire_batch
from payments.billing.common import StepCounts, batch_transaction_tune


def expiry_batch(*, as_of: datetime, customer_ids: list[int], actor: Actor) -> StepCounts:
    with transaction.atomic():
        batch_transaction_tune()
        expired = credit_grants_expire_batch(now=as_of, actor=actor, customer_ids=customer_ids)
    counts = StepCounts()
    counts.add("expired", expired)
    return counts
