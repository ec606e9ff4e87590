"""The import contracts (pyproject.toml [tool.importlinter]) are as strict as they say.

Only imports made by tests may be ignored (a test imports whatever it tests), every app is a
required layer, and the modules behind each service package are protected. `lint-imports` itself
runs in `make lint`; this pins the configuration it runs with.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
TEST_IMPORTER = "apps.*.tests.**"


def test_only_imports_made_by_tests_are_ignored():
    for contract in CONTRACTS:
        for expression in contract.get("ignore_imports", []):
            importer = expression.split("->")[0].strip()
            assert importer == TEST_IMPORTER, (contract["id"], expression)


def test_every_app_is_a_required_layer():
    (layers,) = [c["layers"] for c in CONTRACTS if c["type"] == "layers"]
    named = {name.strip() for layer in layers for name in layer.split("|")}
    assert not [name for name in named if name.startswith("(")], "optional layer"
    apps = {f"apps.{path.name}" for path in (ROOT / "apps").iterdir() if (path / "apps.py").is_file()}
    assert apps <= named, apps - named


def test_the_modules_behind_each_service_package_are_protected():
    protected = {
        (module, tuple(c["allowed_importers"]))
        for c in CONTRACTS
        if c["type"] == "protected"
        for module in c["protected_modules"]
    }
    assert ("apps.payments.services.*", ("apps.payments",)) in protected
    assert ("apps.subscriptions.services.*", ("apps.subscriptions",)) in protected
