"""Nothing outside an app uses its private names (`_name`): not by import, not as a module's
attribute, not in a dotted path given to `mock.patch`/`monkeypatch`. Tests included: a test in
apps/<app>/tests may use its own app's private names, tests/ (no app's) none at all.

import-linter sees modules, not names (its `private_modules` contract covers `_module`s), hence
this check over the syntax trees.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = [ROOT / "apps", ROOT / "tests", ROOT / "conftest.py"]
DOTTED = re.compile(r"^apps(?:\.\w+)+$")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _app_of(dotted: str) -> str | None:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "apps" else None


def _owner(path: Path) -> str | None:
    """The app a file belongs to (apps/<app>/...), None for tests/ and the root conftest."""
    relative = path.relative_to(ROOT).parts
    return relative[1] if relative[0] == "apps" and len(relative) > 2 else None


def _private_in_path(dotted: str) -> str | None:
    """The first private component of `apps.x.y._z...` (a private module or name), if any."""
    return next((part for part in dotted.split(".")[2:] if _private(part)), None)


def _attribute_chain(node: ast.Attribute) -> list[str] | None:
    names: list[str] = []
    current: ast.expr = node
    while isinstance(current, ast.Attribute):
        names.append(current.attr)
        current = current.value
    if not isinstance(current, ast.Name):
        return None
    names.append(current.id)
    return names[::-1]


def violations_in(path: Path) -> list[str]:
    owner = _owner(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    where = path.relative_to(ROOT)
    found: list[str] = []
    modules: dict[str, str] = {}  # local name -> dotted module it is bound to

    def check(dotted: str, line: int) -> None:
        app = _app_of(dotted)
        private = _private_in_path(dotted)
        if app is not None and app != owner and private is not None:
            found.append(f"{where}:{line}: {dotted} ({private} is private to apps.{app})")

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                check(dotted, node.lineno)
                if _is_module(dotted):
                    modules[alias.asname or alias.name] = dotted
        elif isinstance(node, ast.Import):
            for alias in node.names:
                check(alias.name, node.lineno)
                if alias.asname:
                    modules[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    modules[head] = head
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain = _attribute_chain(node)
            if not chain or chain[0] not in modules:
                continue
            dotted = modules[chain[0]]
            for name in chain[1:]:  # walk down while the chain names modules
                if not _is_module(dotted):
                    break
                if _private(name):
                    check(f"{dotted}.{name}", node.lineno)
                    break
                dotted = f"{dotted}.{name}"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and DOTTED.match(node.value):
            check(node.value, node.lineno)  # mock.patch("apps.x.mod._helper"), monkeypatch.setattr(...)
    return sorted(set(found))


def python_files() -> list[Path]:
    files: list[Path] = []
    for place in SCANNED:
        files.extend([place] if place.is_file() else sorted(place.rglob("*.py")))
    return [path for path in files if "migrations" not in path.parts]


def test_no_private_name_is_used_across_app_boundaries():
    found = [line for path in python_files() for line in violations_in(path)]
    assert not found, "private names used outside their app:\n" + "\n".join(found)


def test_the_check_finds_each_kind_of_private_use(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    for package in ("apps", "apps/payments", "apps/payments/services", "apps/webhooks", "tests"):
        (tmp_path / package).mkdir(parents=True)
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "apps/payments/errors.py").write_text("_code = 1\n")
    (tmp_path / "apps/payments/services/_steps.py").write_text("")
    source = (
        "import apps.payments.errors\n"
        "from apps.payments import errors\n"
        "from apps.payments import errors as e\n"
        "from apps.payments.errors import _code, Payment\n"
        "from apps.payments.services import _steps\n"
        "apps.payments.errors._code\n"
        "errors._code\n"
        "e._code\n"
        "errors.__name__, Payment._meta\n"
        "patch('apps.payments.errors._code')\n"
    )
    (tmp_path / "apps/webhooks/module.py").write_text(source)
    (tmp_path / "apps/payments/module.py").write_text(source)
    (tmp_path / "tests/test_x.py").write_text(source)

    outside = violations_in(tmp_path / "apps/webhooks/module.py")
    assert [line.split(":")[1] for line in outside] == ["10", "4", "5", "6", "7", "8"]
    assert [line.split(":")[1] for line in violations_in(tmp_path / "tests/test_x.py")] == [
        "10",
        "4",
        "5",
        "6",
        "7",
        "8",
    ]
    assert violations_in(tmp_path / "apps/payments/module.py") == []
