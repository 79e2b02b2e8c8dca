"""The tree is the architecture: the core never imports Saleor or the adapter, each role imports
only what its package docstring allows, no two modules import each other, and every setting
documents an example its parser accepts."""

import ast
from pathlib import Path

import pytest

import saleor_cart_recovery
from saleor_cart_recovery.settings import registry

PACKAGE = Path(saleor_cart_recovery.__file__).parent
ROOT = PACKAGE.parent
PLUGIN_HOST = ("saleor_cart_recovery.plugin", "saleor_cart_recovery.saleor_host")
APP_HOST = ("saleor_cart_recovery.app",)  # the App host: an adapter too, on Saleor's API only
ADAPTER = PLUGIN_HOST + APP_HOST


def within(name: str, packages: tuple[str, ...]) -> bool:
    """``name`` is one of ``packages`` or inside one (``…app`` holds ``…app.shop``, not ``…apps``)."""
    return any(name == package or name.startswith(f"{package}.") for package in packages)


# What each core role may import of this package (besides itself and the root modules that are
# shared infrastructure): the layering the subpackages' docstrings describe.
ALLOWED = {
    "settings": set(),
    "experiments": {"settings"},
    "email": {"settings"},
    "series": {"settings", "email", "experiments"},
    "http": {"settings", "email", "experiments", "series"},
}
SHARED_ROOT = {"exceptions", "formatting", "languages", "models", "shop", "templating"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module an import statement in ``path`` names, relative imports resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


MODULES = {
    module_name(path): path
    for path in sorted(PACKAGE.rglob("*.py"))
    if "migrations" not in path.parts and "__pycache__" not in path.parts
}
CORE = {name: path for name, path in MODULES.items() if not within(name, ADAPTER)}


def test_the_walk_finds_the_core_and_the_adapter():
    assert "saleor_cart_recovery.series.delivery" in CORE
    assert "saleor_cart_recovery.saleor_host.shop" in MODULES
    assert "saleor_cart_recovery.saleor_host.shop" not in CORE
    assert "saleor_cart_recovery.app.shop" in MODULES
    assert "saleor_cart_recovery.app.shop" not in CORE
    # and the adapter is seen importing Saleor, so the check below would see it too
    assert "saleor.checkout.models" in imports_of(MODULES["saleor_cart_recovery.saleor_host.shop"])


@pytest.mark.parametrize("name", sorted(CORE), ids=lambda name: f"{name}_case")
def test_the_core_never_imports_saleor_or_the_adapter(name):
    wrong = sorted(
        target
        for target in imports_of(CORE[name])
        if target == "saleor" or target.startswith("saleor.") or within(target, ADAPTER)
    )
    assert wrong == []


APP_MODULES = sorted(name for name in MODULES if within(name, APP_HOST))


@pytest.mark.parametrize("name", APP_MODULES, ids=lambda name: f"{name}_case")
def test_the_app_host_never_imports_saleor_or_the_plugin_host(name):
    # the app server installs and runs without Saleor: it reaches Saleor over HTTP only
    wrong = sorted(
        target
        for target in imports_of(MODULES[name])
        if target == "saleor" or target.startswith("saleor.") or within(target, PLUGIN_HOST)
    )
    assert wrong == []


@pytest.mark.parametrize("name", sorted(MODULES), ids=lambda name: f"{name}_case")
def test_the_plugin_host_never_imports_the_app_host(name):
    if not within(name, PLUGIN_HOST):
        return
    assert sorted(target for target in imports_of(MODULES[name]) if within(target, APP_HOST)) == []


@pytest.mark.parametrize("name", sorted(CORE), ids=lambda name: f"{name}_case")
def test_each_role_imports_only_what_its_layer_allows(name):
    role = name.split(".")[1] if name.count(".") >= 2 else None
    if role not in ALLOWED:
        return  # root modules, management commands: they wire the roles together
    reached = {
        target.split(".")[1]
        for target in imports_of(CORE[name])
        if target.startswith("saleor_cart_recovery.") and target.count(".") >= 1
    }
    assert reached - {role} - SHARED_ROOT - ALLOWED[role] == set()


def test_no_two_modules_import_each_other_in_a_cycle():
    graph = {
        name: {target for target in imports_of(path) if target in MODULES and target != name}
        for name, path in MODULES.items()
    }
    # a package's __init__ names itself through its submodules; only module-to-module edges count
    cycles = []

    def visit(node, trail):
        for target in graph[node]:
            if target in trail:
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in done:
                visit(target, [*trail, target])
        done.add(node)

    done: set[str] = set()
    for name in graph:
        if name not in done:
            visit(name, [name])
    assert cycles == []


@pytest.mark.parametrize("field", registry.FIELDS, ids=lambda field: f"{field.name}_case")
def test_every_field_documents_an_example_its_parser_accepts(field):
    assert field.label and field.help
    if field.example:
        field.parse(field.example)
    field.parse(field.default)
