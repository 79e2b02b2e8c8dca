"""The Saleor versions this release supports, declared once.

Read by the plugin's start-up check (``saleor_host.version_check``), the Saleor suite's gate
(``tests/saleor/conftest.py``) and the App manifest's ``requiredSaleorVersion``; pyproject's
description and the README say the same (``tests/core/test_saleor_versions.py`` keeps them so).
A series is supported when the whole Saleor suite passes on it: 3.23 on its latest release, 3.24 on
its development branch (README "Supported Saleor versions" names the commit). Imports no Saleor.
"""

import re

# (major, minor), oldest first and without gaps: REQUIRED_SALEOR_VERSION spans from the first to the last.
SUPPORTED_SERIES: tuple[tuple[int, int], ...] = ((3, 23), (3, 24))

SUPPORTED_TEXT = " and ".join(f"{major}.{minor}" for major, minor in SUPPORTED_SERIES)

# An npm-style range as Saleor reads a manifest's requiredSaleorVersion (its prerelease policy is
# "natural"): the upper bound ``-0`` keeps the next series' prereleases (e.g. 3.25.0-a.0) out too.
_FIRST, _LAST = SUPPORTED_SERIES[0], SUPPORTED_SERIES[-1]
REQUIRED_SALEOR_VERSION = f">={_FIRST[0]}.{_FIRST[1]}.0 <{_LAST[0]}.{_LAST[1] + 1}.0-0"

_SERIES = re.compile(r"(\d+)\.(\d+)(?:\.|$)")


def is_supported(version: str) -> bool:
    """Whether a Saleor ``__version__`` (``3.23.28``, ``3.24.0-a.0``) is in a supported series;
    prereleases count with their series."""
    match = _SERIES.match(version)
    return match is not None and (int(match.group(1)), int(match.group(2))) in SUPPORTED_SERIES


def unsupported_message(version: str) -> str:
    """One wording for the log, the system check and the test gate: what was found, what is supported."""
    return (
        f"Saleor {version or '(no version)'} is not supported by this release of saleor-cart-recovery, "
        f"which supports Saleor {SUPPORTED_TEXT}"
    )
