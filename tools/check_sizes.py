"""Size budget (architecture guide, rule 5): modules < 600 lines, functions < 50 code lines.

Code lines exclude blank lines, comment-only lines and the docstring.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_MODULE_LINES = 600
MAX_FUNCTION_CODE_LINES = 50


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef, source: list[str]) -> int:
    first = node.body[0]
    skip: set[int] = set()
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        if isinstance(first.value.value, str):
            skip = set(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    end = node.end_lineno or node.lineno
    count = 0
    for number in range(node.lineno, end + 1):
        text = source[number - 1].strip()
        if number in skip or not text or text.startswith("#"):
            continue
        count += 1
    return count


def check(root: Path) -> list[str]:
    """Every violation under ``root``, one line each."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        if len(lines) > MAX_MODULE_LINES:
            problems.append(f"{path}: {len(lines)} lines (max {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = _code_lines(node, lines)
                if n > MAX_FUNCTION_CODE_LINES:
                    problems.append(
                        f"{path}:{node.lineno}: {node.name}() has {n} code lines "
                        f"(max {MAX_FUNCTION_CODE_LINES})"
                    )
    return problems


def main() -> int:
    problems = check(Path(__file__).resolve().parents[1] / "greenserve")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
