"""`manage.py billing verify`: every derived figure recomputed from the append-only rows."""

from dataclasses import dataclass

from credits.selectors import credit_balance_mismatches
from payments.billing.rollup_groups import rollup_mismatches
from payments.selectors import invoice_total_mismatches


@dataclass(frozen=True)
class Mismatch:
    kind: str
    detail: dict

    def describe(self) -> str:
        fields = " ".join(f"{key}={value}" for key, value in self.detail.items() if key != "kind")
        return f"{self.kind}: {fields}"


def billing_verify() -> list[Mismatch]:
    rows = credit_balance_mismatches() + invoice_total_mismatches() + rollup_mismatches()
    return [Mismatch(kind=row["kind"], detail=row) for row in rows]
