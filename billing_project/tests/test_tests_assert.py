"""Every test of the project checks something: a test that only runs code passes whatever the code does.

The rule: a `test_*` function (nested functions and lambdas included) holds an `assert` statement, or a
call whose name, leading underscores aside, starts with one of CHECK_PREFIXES (`_assert_error`,
`expect_conflict`, mock's `assert_called_once_with`, unittest's `assertNumQueries`), or is one of
CHECK_CALLS (pytest's raises/warns/fail, pytest-django's query counters, schemathesis' response validation,
the models tests' `refused`, which wraps pytest.raises(IntegrityError)). A helper whose name starts with a
check prefix must itself check, so the name cannot stand in for an assertion it does not make."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_DIRS = {".venv", "node_modules", "__pycache__"}
CHECK_PREFIXES = ("assert", "expect")
CHECK_CALLS = {"raises", "warns", "fail", "django_assert_num_queries", "django_assert_max_num_queries",
               "call_and_validate", "refused"}


def _test_files() -> list[Path]:
    return [path for path in sorted(ROOT.rglob("*.py")) if "tests" in path.relative_to(ROOT).parts[:-1]
            and not SKIPPED_DIRS & set(path.relative_to(ROOT).parts)]


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _is_check_name(name: str) -> bool:
    return name in CHECK_CALLS or _is_named_for_checking(name)


def _is_named_for_checking(name: str) -> bool:
    return name.lstrip("_").startswith(CHECK_PREFIXES)


def _checks(function: ast.AST) -> bool:
    for node in ast.walk(function):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call) and (name := _called_name(node)) and _is_check_name(name):
            return True
    return False


def _unchecked(path: Path, *, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        is_test = node.name.startswith("test_") and path.name.startswith("test_")
        if (is_test or _is_named_for_checking(node.name)) and not _checks(node):
            found.append(f"{path.relative_to(root)}:{node.name} (line {node.lineno})")
    return found


def test_every_test_and_every_helper_named_for_checking_asserts_something():
    files = _test_files()

    unchecked = [found for path in files for found in _unchecked(path)]

    assert len(files) > 50  # the walk sees the project's tests, not an empty directory
    assert unchecked == []


def test_the_check_finds_a_test_without_assertion_and_a_helper_that_only_bears_the_name(tmp_path):
    module = tmp_path / "test_module.py"
    module.write_text(
        "import pytest\n"
        "def assert_paid(invoice):\n    invoice.refresh_from_db()\n"
        "def expect_conflict(response):\n    assert response.status_code == 409\n"
        "def test_runs_only():\n    invoice = make()\n    invoice.pay()\n"
        "def test_asserts():\n    assert make()\n"
        "def test_raises():\n    with pytest.raises(ValueError):\n        make()\n"
        "def test_counts_queries(django_assert_num_queries):\n"
        "    with django_assert_num_queries(1):\n        make()\n"
        "def test_calls_a_named_helper():\n    expect_conflict(make())\n"
        "class TestGroup:\n    async def test_in_a_class(self):\n        await make()\n",
        encoding="utf-8")

    assert _unchecked(module, root=tmp_path) == ["test_module.py:assert_paid (line 2)",
                                                 "test_module.py:test_runs_only (line 6)",
                                                 "test_module.py:test_in_a_class (line 20)"]
