"""Faults inside real Saleor: a host's transactional tests, broken stored settings, a stalled mail
server while the shopper keeps shopping, a purchase through another checkout."""

import pytest

from saleor_cart_recovery.models import RecoveryCart


@pytest.mark.django_db(transaction=True)
def test_a_hosts_transactional_test_tears_down_cleanly_with_the_plugin_installed(channel_USD):
    # the flush at teardown replays post_migrate, which registers our beat entry again
    assert RecoveryCart.objects.count() == 0
