"""The supported Saleor versions inside real Saleor: the plugin says so in every process when Saleor
is one it does not support (an error in the log, system check warning ``cart_recovery.W001`` where
``migrate`` and ``check`` print it), and the App manifest's range means to Saleor what the
declaration means to us."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import saleor
from saleor.app.manifest_validations import _clean_required_saleor_version

from saleor_cart_recovery.saleor_host.version_check import CHECK_ID
from saleor_cart_recovery.saleor_versions import REQUIRED_SALEOR_VERSION, is_supported

ROOT = Path(__file__).resolve().parents[2]
SALEOR_SRC = Path(saleor.__file__).resolve().parents[1]


def manage_check(saleor_version: str) -> subprocess.CompletedProcess:
    """``manage.py check`` in a Saleor process that reports ``saleor_version`` (set before Django
    starts, the only change to Saleor), with Saleor's production settings: they load every plugin
    when Django starts (its test settings load none)."""
    code = (
        "import sys, saleor\n"
        f"saleor.__version__ = {saleor_version!r}\n"
        "from django.core.management import execute_from_command_line\n"
        "execute_from_command_line(['manage.py', 'check'])\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(SALEOR_SRC)]),
        "DJANGO_SETTINGS_MODULE": "saleor.settings",
    }
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )


def test_on_the_saleor_installed_the_plugin_starts_without_a_word():
    # given the Saleor this suite runs on, which is a supported one (or the suite would have failed)
    assert is_supported(saleor.__version__)
    # when a Saleor process starts and runs the system checks
    result = manage_check(saleor.__version__)
    # then neither the log nor the checks say anything about versions
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output
    assert "not supported" not in output


def test_on_an_unsupported_saleor_every_process_logs_an_error_and_checks_warn():
    version = "3.25.0"
    # when a Saleor process of an unsupported version starts and runs the system checks
    result = manage_check(version)
    output = result.stdout + result.stderr
    # then it logged an error naming the version found and the ones supported ...
    expected = f"Saleor {version} is not supported by this release of saleor-cart-recovery, "
    expected += "which supports Saleor 3.23 and 3.24"
    logged = [line for line in output.splitlines() if "cart recovery:" in line and expected in line]
    assert len(logged) == 1, output
    assert "ERROR" in logged[0]
    # ... and the system checks warn the same (a warning: `migrate` still runs Saleor's upgrade)
    assert result.returncode == 0, output
    assert f"({CHECK_ID}) {expected}" in output
    assert "README 'Supported Saleor versions'" in output


@pytest.mark.parametrize(
    "version",
    [
        "3.22.40",
        "3.23.0",
        "3.23.28",
        "3.24.0-a.0",
        "3.24.0",
        "3.24.9",
        "3.25.0-a.0",
        "3.25.0",
        saleor.__version__,
    ],
    ids=lambda value: f"{value}_case",
)
def test_saleor_reads_the_manifest_range_as_we_read_the_declaration(version):
    # Saleor's own check of an App manifest's requiredSaleorVersion (what appInstall runs)
    checked = _clean_required_saleor_version(REQUIRED_SALEOR_VERSION, False, saleor_version=version)
    assert checked == {"constraint": REQUIRED_SALEOR_VERSION, "satisfied": is_supported(version)}
