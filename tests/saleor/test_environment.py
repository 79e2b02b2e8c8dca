"""Collected with or without Saleor: reports the skip when Saleor is missing, fails when the Saleor
found is one this release does not support (or the settings are not Saleor's)."""

import pytest

from .conftest import SALEOR_MISSING, SALEOR_PROBLEM


def test_saleor_discovers_the_plugin_through_its_entry_point():
    if SALEOR_MISSING:
        pytest.skip(SALEOR_MISSING)
    if SALEOR_PROBLEM:
        pytest.fail(SALEOR_PROBLEM, pytrace=False)
    # given Saleor's settings, which read every `saleor.plugins` entry point
    from django.apps import apps
    from django.conf import settings

    # then our Django app is installed and our plugin class is one of Saleor's external plugins
    assert apps.is_installed("saleor_cart_recovery")
    assert "saleor_cart_recovery.plugin.CartRecoveryPlugin" in settings.EXTERNAL_PLUGINS
