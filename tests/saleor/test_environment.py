"""Collected with or without Saleor: reports the skip when the host is missing."""

import pytest

from .conftest import SALEOR_PROBLEM


def test_saleor_discovers_the_plugin_through_its_entry_point():
    if SALEOR_PROBLEM:
        pytest.skip(SALEOR_PROBLEM)
    # given Saleor's settings, which read every `saleor.plugins` entry point
    from django.apps import apps
    from django.conf import settings

    # then our Django app is installed and our plugin class is one of Saleor's external plugins
    assert apps.is_installed("saleor_cart_recovery")
    assert "saleor_cart_recovery.plugin.CartRecoveryPlugin" in settings.EXTERNAL_PLUGINS
