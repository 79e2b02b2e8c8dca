"""Say so, in every Saleor process, when Saleor is a version this release does not support.

Saleor imports ``plugin.py`` in every process it starts (its ``saleor.plugins`` app loads each
plugin class once Django's apps are ready: web, worker, beat, ``manage.py``), and that calls
:func:`connect`. On an unsupported Saleor each process logs one error naming the version found and
the supported ones, and Django's system checks report the same as warning ``cart_recovery.W001`` on
``manage.py migrate`` / ``check`` / ``runserver`` — where an upgrade is deployed. A warning, not a
check error: an error would stop ``migrate``, and with it Saleor's own upgrade half-way, over a
plugin. The plugin keeps running as before; the message says it is untested there.
"""

import logging

import saleor
from django.core import checks

from ..saleor_versions import is_supported, unsupported_message

logger = logging.getLogger(__name__)

CHECK_ID = "cart_recovery.W001"
HINT = (
    "Install a saleor-cart-recovery release that supports this Saleor, or run a supported Saleor; "
    "until then the plugin runs on a version it was not tested with (README 'Supported Saleor versions')."
)


def version_problems(version: str) -> list[checks.CheckMessage]:
    """The system check's findings for a Saleor ``__version__``: none when it is supported."""
    if is_supported(version):
        return []
    return [checks.Warning(unsupported_message(version), hint=HINT, id=CHECK_ID)]


def check_saleor_version(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    return version_problems(saleor.__version__)


def connect() -> None:
    """Register the system check and log the error once for this process."""
    checks.register(check_saleor_version, checks.Tags.compatibility)
    for problem in version_problems(saleor.__version__):
        logger.error("cart recovery: %s. %s", problem.msg, problem.hint)
