"""Fixtures for the suite that runs against a real Saleor of a supported version.

Run with Saleor's own test settings (see README 'Saleor suite'):

    pytest tests/saleor --ds=saleor.tests.settings --reuse-db

When Saleor is not importable (e.g. the core virtualenv), no module that imports Saleor is
collected and ``test_environment.py`` reports one skip instead: that is how the suite passes on a
machine without Saleor. When Saleor is importable but cannot be used — a version this release does
not support (``saleor_cart_recovery.saleor_versions``), or Django settings that are not Saleor's —
the same single test fails, saying what was found and what is supported.
"""

import importlib
from pathlib import Path

from saleor_cart_recovery.saleor_versions import is_supported, unsupported_message

SKIP_REASON = "Saleor not importable; see README 'Saleor suite'"
# The one module collected without a usable Saleor: it reports the skip or the failure.
ENVIRONMENT_MODULE = "test_environment.py"


def _saleor_missing() -> str | None:
    """Why this run has no Saleor at all (a skip), or ``None``."""
    try:
        importlib.import_module("saleor")
    except ImportError as exc:
        return f"{SKIP_REASON} ({exc})"
    return None


def _saleor_problem() -> str | None:
    """Why the Saleor found cannot run this suite (a failure), or ``None`` when it can."""
    saleor = importlib.import_module("saleor")
    version = getattr(saleor, "__version__", "")
    if not is_supported(version):
        found_in = Path(saleor.__file__).parent
        return f"{unsupported_message(version)} (found in {found_in}); see README 'Saleor suite'"
    from django.conf import settings

    if "saleor.checkout" not in getattr(settings, "INSTALLED_APPS", ()):
        return "Django settings are not Saleor's: pass --ds=saleor.tests.settings (README 'Saleor suite')"
    return None


SALEOR_MISSING = _saleor_missing()
SALEOR_PROBLEM = None if SALEOR_MISSING else _saleor_problem()

if SALEOR_MISSING or SALEOR_PROBLEM:
    collect_ignore = [
        path.name for path in Path(__file__).parent.glob("test_*.py") if path.name != ENVIRONMENT_MODULE
    ]
else:
    import django.test
    from django.conf import settings as django_settings
    from saleor.tests.utils import prepare_test_db_connections

    # Saleor's root conftest.py does this: one connection known under two aliases, so code that
    # reads from the replica sees the test transaction.
    _DATABASES = {
        django_settings.DATABASE_CONNECTION_DEFAULT_NAME,
        django_settings.DATABASE_CONNECTION_REPLICA_NAME,
    }
    django.test.TransactionTestCase.databases = _DATABASES
    django.test.TestCase.databases = _DATABASES
    prepare_test_db_connections()

    def pytest_configure(config):
        # Saleor's own pytest configuration ignores its dependencies' deprecation noise too.
        for line in (
            r"ignore::DeprecationWarning:saleor\.",
            "ignore::DeprecationWarning:django_measurement",
            "ignore:SECRET_KEY not configured:UserWarning",
        ):
            config.addinivalue_line("filterwarnings", line)

    # The fixture modules Saleor's root conftest.py (not shipped with the package) lists.
    pytest_plugins = [
        "saleor.tests.fixtures",
        "saleor.app.tests.fixtures",
        "saleor.plugins.tests.fixtures",
        "saleor.graphql.tests.fixtures",
        "saleor.webhook.tests.fixtures",
        "saleor.tax.tests.fixtures",
        "saleor.channel.tests.fixtures",
        "saleor.page.tests.fixtures",
        "saleor.menu.tests.fixtures",
        "saleor.warehouse.tests.fixtures",
        "saleor.thumbnail.tests.fixtures",
        "saleor.order.tests.fixtures",
        "saleor.product.tests.fixtures",
        "saleor.site.tests.fixtures",
        "saleor.shipping.tests.fixtures",
        "saleor.permission.tests.fixtures",
        "saleor.giftcard.tests.fixtures",
        "saleor.discount.tests.fixtures",
        "saleor.checkout.tests.fixtures",
        "saleor.attribute.tests.fixtures",
        "saleor.account.tests.fixtures",
        "saleor.graphql.account.tests.fixtures",
        "saleor.payment.tests.fixtures",
        "saleor.webhook.tests.circuit_breaker.fixtures",
        # Ours, on top of Saleor's.
        "tests.saleor.fixtures",
    ]
