"""Nothing outside a rail's package names the rail (issue 10): billing, collection, dunning, refunds,
checkout, seeding, the API, the admin and the benchmarks speak the provider contract and the neutral
columns. This scans production modules outside `payments/providers/stripe/` (migrations, settings and
tests are left out) for `stripe` in identifiers (names, attributes, imports, arguments, keywords) and in
identifier-like words of string literals (field names, dotted paths, codes), and fails naming file:line.
Prose (docstrings, comments, capitalised text such as "Stripe Checkout") is not looked at."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RAIL = "stripe"
RAIL_PACKAGE = Path("payments/providers/stripe")
SKIPPED_DIRS = {".venv", "migrations", "tests", "node_modules", "staticfiles", "__pycache__"}
SKIPPED_FILES = {"conftest.py", "settings.py"}
# A lowercase word of a string literal that names the rail: "stripe", "stripe_customer_id",
# "payments.providers.stripe", "change_stripeevent", "/webhooks/stripe/".
_STRING_WORD = re.compile(r"[a-z0-9_./-]*stripe[a-z0-9_./-]*")
_PAYPAL_WORD = re.compile(r"[a-z0-9_./-]*paypal[a-z0-9_./-]*")
_LEMONSQUEEZY_WORD = re.compile(r"[a-z0-9_./-]*lemonsqueezy[a-z0-9_./-]*")

# "path:word" that must stay, with the reason beside it. Keep it short.
ALLOWED: dict[str, str] = {
    # Payment.method is how the customer paid, a value stored on every card payment and shown by the API
    # and the admin; which rail holds the payment's ids is the neutral `provider` column.
    "payments/models.py:STRIPE": "the `stripe` payment method (PaymentMethod.STRIPE)",
    "payments/models.py:stripe": "its stored value",
    # The OpenAPI example of the setup-intent answer shows the default rail's code, as a client sees it.
    "payments/api/checkout_views.py:stripe": "an example value in the API schema",
    # The benchmark measures the Stripe webhook door itself: signed Stripe deliveries to /webhooks/stripe/.
    "bench/webhook_throughput.py:*": "benchmarks one rail's webhook endpoint",
}

# The same scan for the PayPal rail (issue 12), outside `payments/providers/paypal/`.
PAYPAL_PACKAGE = Path("payments/providers/paypal")
PAYPAL_ALLOWED: dict[str, str] = {
    "payments/models.py:PAYPAL": "the `paypal` payment method (PaymentMethod.PAYPAL)",
    "payments/models.py:paypal": "its stored value",
    # The OpenAPI example and help text of the approval endpoints show a rail that has approve links.
    "payments/api/provider_views.py:paypal": "an example value in the API schema",
}

# The same scan for the Lemon Squeezy rail (issue 13), outside `payments/providers/lemonsqueezy/`.
LEMONSQUEEZY_PACKAGE = Path("payments/providers/lemonsqueezy")
LEMONSQUEEZY_ALLOWED: dict[str, str] = {
    "payments/models.py:LEMONSQUEEZY": "the `lemonsqueezy` payment method (PaymentMethod.LEMONSQUEEZY)",
    "payments/models.py:lemonsqueezy": "its stored value",
}


def _project_files(rail_package: Path = RAIL_PACKAGE) -> list[Path]:
    files = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if SKIPPED_DIRS & set(relative.parts[:-1]) or path.name in SKIPPED_FILES:
            continue
        if relative.is_relative_to(rail_package):
            continue
        files.append(path)
    return files


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (prose)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _words(node: ast.AST, docstrings: set[int]) -> list[str]:
    """The identifiers a node introduces or uses, and the identifier-like words of a string literal."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.keyword) and node.arg:
        return [node.arg]
    if isinstance(node, ast.alias):
        return [node.name, node.asname or ""]
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
        return (_STRING_WORD.findall(node.value) + _PAYPAL_WORD.findall(node.value)
                + _LEMONSQUEEZY_WORD.findall(node.value))
    return []


def _rail_names(path: Path, *, root: Path = ROOT, rail: str = RAIL, allowed: dict[str, str] = ALLOWED) -> list[str]:
    """file:line word, for each identifier or identifier-like string word naming the rail."""
    relative = path.relative_to(root).as_posix()
    if f"{relative}:*" in allowed:
        return []
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        for word in _words(node, docstrings):
            if rail in word.lower() and f"{relative}:{word}" not in allowed:
                found.append(f"{relative}:{getattr(node, 'lineno', 0)} {word}")
    return sorted(set(found))


def test_no_production_module_outside_the_rail_names_it():
    files = _project_files()

    named = [found for path in files for found in _rail_names(path)]

    assert len(files) > 100  # the walk sees the project, not an empty directory
    assert named == []


def test_no_production_module_outside_the_paypal_rail_names_it():
    files = _project_files(PAYPAL_PACKAGE)

    named = [found for path in files for found in _rail_names(path, rail="paypal", allowed=PAYPAL_ALLOWED)]

    assert len(files) > 100
    assert named == []


def test_no_production_module_outside_the_lemonsqueezy_rail_names_it():
    files = _project_files(LEMONSQUEEZY_PACKAGE)

    named = [found for path in files
             for found in _rail_names(path, rail="lemonsqueezy", allowed=LEMONSQUEEZY_ALLOWED)]

    assert len(files) > 100
    assert named == []


def test_the_scan_finds_names_attributes_imports_keywords_and_string_words_but_not_prose(tmp_path):
    module = tmp_path / "module.py"
    module.write_text(
        '"""Paid through Stripe Checkout; stripe in prose is fine."""\n'
        "from payments.providers.stripe import gateway\n"
        "def charge(customer):\n"
        '    """Charges with Stripe."""\n'
        "    key = refund_stripe_key(refund_id=1)\n"
        "    customer.stripe_customer_id\n"
        "    Payment.objects.filter(stripe_charge_id=key)\n"
        '    return ["customer__stripe_customer_id", "Stripe could not be reached"]  # a stripe comment\n',
        encoding="utf-8")

    assert _rail_names(module, root=tmp_path) == [
        "module.py:2 payments.providers.stripe",
        "module.py:5 refund_stripe_key",
        "module.py:6 stripe_customer_id",
        "module.py:7 stripe_charge_id",
        "module.py:8 customer__stripe_customer_id",
    ]


def test_every_allowed_entry_still_matches_a_file():
    assert all((ROOT / entry.rsplit(":", 1)[0]).is_file() for entry in ALLOWED | PAYPAL_ALLOWED | LEMONSQUEEZY_ALLOWED)
