"""The supported Saleor versions: declared once, said the same in pyproject and README, and the
Saleor suite's gate — a skip without Saleor, a failure on an unsupported one.

The gate runs here against a stand-in ``saleor`` package (only its ``__version__``, which is all
the gate reads before it imports anything else); against real Saleor it runs in every Saleor-suite
run (``tests/saleor/test_environment.py``).
"""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from saleor_cart_recovery.saleor_versions import (
    REQUIRED_SALEOR_VERSION,
    SUPPORTED_SERIES,
    SUPPORTED_TEXT,
    is_supported,
    unsupported_message,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("version", "supported"),
    [
        ("3.23.0", True),
        ("3.23.28", True),
        ("3.24.0-a.0", True),
        ("3.24.3", True),
        ("3.22.40", False),
        ("3.25.0-a.0", False),
        ("3.25.0", False),
        ("4.23.0", False),
        ("3.2", False),
        ("3.230.1", False),
        ("", False),
        ("dev", False),
    ],
    ids=lambda value: f"{value}_case" if isinstance(value, str) else None,
)
def test_a_version_is_supported_by_its_series(version, supported):
    assert is_supported(version) is supported


def test_the_declaration_reads_the_same_everywhere():
    # given the one declaration
    assert SUPPORTED_SERIES == ((3, 23), (3, 24))
    # then its forms agree with it (the manifest range is checked against Saleor's own parser in
    # the Saleor suite)
    assert SUPPORTED_TEXT == "3.23 and 3.24"
    assert REQUIRED_SALEOR_VERSION == ">=3.23.0 <3.25.0-0"
    assert unsupported_message("3.25.0") == (
        "Saleor 3.25.0 is not supported by this release of saleor-cart-recovery, "
        "which supports Saleor 3.23 and 3.24"
    )


def test_pyproject_and_readme_declare_the_supported_versions():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert f"Saleor {SUPPORTED_TEXT}" in project["description"]
    assert [word for word in project["keywords"] if re.fullmatch(r"saleor-\d+\.\d+", word)] == [
        f"saleor-{major}.{minor}" for major, minor in SUPPORTED_SERIES
    ]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Supported Saleor versions\n(.*?)^## ", readme, re.S | re.M)
    assert section is not None, "README lost its 'Supported Saleor versions' section"
    assert f"Saleor {SUPPORTED_TEXT}" in section.group(1)


def run_saleor_suite(tmp_path: Path, saleor_version: str | None) -> subprocess.CompletedProcess:
    """``pytest tests/saleor`` as a user would run it, with a stand-in Saleor of ``saleor_version``
    importable (``None``: no Saleor at all), and this repository's test settings."""
    path = [str(ROOT)]
    if saleor_version is not None:
        package = tmp_path / "saleor"
        package.mkdir()
        (package / "__init__.py").write_text(f"__version__ = {saleor_version!r}\n", encoding="utf-8")
        path.insert(0, str(tmp_path))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/saleor", "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_saleor_the_suite_reports_one_skip(tmp_path):
    result = run_saleor_suite(tmp_path, None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "Saleor not importable" in result.stdout


@pytest.mark.parametrize("version", ["3.25.0", "3.22.9"], ids=lambda value: f"{value}_case")
def test_an_unsupported_saleor_fails_the_suite_naming_found_and_supported(tmp_path, version):
    result = run_saleor_suite(tmp_path, version)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed" in result.stdout
    assert "skipped" not in result.stdout
    assert f"Saleor {version} is not supported" in result.stdout
    assert "supports Saleor 3.23 and 3.24" in result.stdout


def test_a_supported_saleor_without_its_settings_fails_the_suite(tmp_path):
    # given a supported Saleor importable, but the run forgot --ds=saleor.tests.settings
    result = run_saleor_suite(tmp_path, "3.23.28")
    # then it fails saying what to pass, rather than skipping as if there were no Saleor
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed" in result.stdout
    assert "pass --ds=saleor.tests.settings" in result.stdout
