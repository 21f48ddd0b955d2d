"""Every status move goes through its model's transition function, which refuses illegal moves and writes
the audit row. This reads the source (AST) for status writes anywhere else: `.update(status=...)`,
`rows_update(...)` with a status column, `bulk_update` of status, and `<obj>.status = ...`."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("core", "billing_project", "subscriptions", "credits", "usage", "payments", "reports")

# (path, function) -> why it may write a status.
ALLOWED = {
    ("subscriptions/services.py", "subscription_transition"): "the transition function",
    ("subscriptions/services.py", "subscription_transition_many"): "its bulk variant",
    ("subscriptions/services.py", "subscription_periods_move_many"): "the billing run's bulk variant: moves judged "
                                                                     "by the same rules, written with the new periods",
    ("subscriptions/services.py", "subscription_create"): "the initial status of a new row",
    ("payments/billing/forecast.py", "forecast_steps"): "an unsaved copy walked forward, never saved",
    ("payments/services/invoices.py", "invoice_transition"): "the transition function",
    ("payments/billing/invoicing.py", "_invoices_number"): "bulk issuing: the batch's drafts open (or are "
                                                           "paid) with their numbers, audited as written",
    ("payments/services/payments.py", "payment_transition"): "the transition function",
    ("payments/services/credit_pack_order_transitions.py", "credit_pack_order_transition"): "the transition function",
    ("payments/services/credit_pack_order_transitions.py", "credit_pack_orders_transition_many"): "its bulk variant",
    ("payments/services/refunds.py", "refund_transition"): "the transition function",
    # Not a domain status with a transition table: the webhook inbox's processing state.
    ("payments/providers/inbox.py", "_event_handle"): "webhook inbox state",
    ("payments/providers/inbox.py", "provider_events_requeue"): "webhook inbox state (failed back to pending)",
}


def _writes_status(node: ast.AST) -> bool:
    if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(isinstance(t, ast.Attribute) and t.attr == "status" for t in targets)
    if not isinstance(node, ast.Call):
        return False
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    if name == "update":
        return any(k.arg == "status" for k in node.keywords)
    if name == "rows_update":
        dicts = [k.value for k in node.keywords if k.arg in ("columns", "constants") and isinstance(k.value, ast.Dict)]
        return any(isinstance(key, ast.Constant) and key.value == "status" for d in dicts for key in d.keys)
    if name == "bulk_update":
        return any(isinstance(c, ast.Constant) and c.value == "status" for a in node.args[1:] + [k.value for k in
                   node.keywords] if isinstance(a, ast.List | ast.Tuple) for c in a.elts)
    return False


class _Writes(ast.NodeVisitor):
    """Each status write with the innermost function it is in ("<module>" outside any)."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.found: list[tuple[str, int]] = []

    def _function(self, node) -> None:
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def generic_visit(self, node) -> None:
        if _writes_status(node):
            self.found.append((self.stack[-1] if self.stack else "<module>", node.lineno))
        super().generic_visit(node)


def _status_writes(path: Path) -> list[tuple[str, int]]:
    writes = _Writes()
    writes.visit(ast.parse(path.read_text(), filename=str(path)))
    return writes.found


def _sources():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if "tests" in parts or "migrations" in parts:
                continue
            yield path


def test_status_is_written_only_by_the_transition_functions():
    found = set()
    offenders = []
    for path in _sources():
        relative = path.relative_to(ROOT).as_posix()
        for function, line in _status_writes(path):
            if (relative, function) in ALLOWED:
                found.add((relative, function))
            else:
                offenders.append(f"{relative}:{line} in {function}()")
    assert offenders == [], "status written outside a transition function:\n" + "\n".join(offenders)
    # The allow-list names real places: a renamed transition function must be renamed here too.
    assert found == set(ALLOWED)


def test_the_guard_sees_each_form_of_status_write():
    source = '''
def f(qs, sub, ids):
    qs.update(status="x")
    sub.status = "x"
    rows_update(model=M, ids=ids, columns={"status": ("text", [])})
    rows_update(model=M, ids=ids, columns={}, constants={"status": "x"})
    M.objects.bulk_update(objs, ["status"])
    qs.update(name="x")
'''
    writes = sorted(node.lineno for node in ast.walk(ast.parse(source)) if _writes_status(node))
    assert writes == [3, 4, 5, 6, 7]
