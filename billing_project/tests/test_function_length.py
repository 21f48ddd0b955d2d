"""No function of the project (outside tests and migrations) runs past MAX_LINES: a longer one is split
into named steps. Counted from the `def` line to its last line, decorators excluded."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 60
SKIPPED_DIRS = {".venv", "migrations", "tests", "node_modules", "staticfiles", "__pycache__"}
# "path:function" of a function that truly cannot be split, with the reason beside it. Empty today.
ALLOWED: dict[str, str] = {}


def _project_files() -> list[Path]:
    return [path for path in sorted(ROOT.rglob("*.py"))
            if not SKIPPED_DIRS & set(path.relative_to(ROOT).parts[:-1]) and path.name != "conftest.py"]


def _long_functions(path: Path, *, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            name = f"{path.relative_to(root)}:{node.name}"
            if length > MAX_LINES and name not in ALLOWED:
                found.append(f"{name} ({length} lines, line {node.lineno})")
    return found


def test_no_function_outside_tests_and_migrations_is_longer_than_sixty_lines():
    files = _project_files()

    too_long = [found for path in files for found in _long_functions(path)]

    assert len(files) > 100  # the walk sees the project, not an empty directory
    assert too_long == []


def test_the_length_check_catches_one_line_too_many_and_nested_functions(tmp_path):
    def source(name: str, lines: int, indent: str = "") -> str:
        body = "\n".join(f"{indent}    x{n} = {n}" for n in range(lines - 1))
        return f"{indent}def {name}():\n{body}\n"
    module = tmp_path / "module.py"
    module.write_text(source("just_fits", MAX_LINES) + "\n\nclass Steps:\n" + source("too_long", MAX_LINES + 1, "    "),
                      encoding="utf-8")

    assert _long_functions(module, root=tmp_path) == [f"module.py:too_long ({MAX_LINES + 1} lines, line "
                                                      f"{MAX_LINES + 4})"]
