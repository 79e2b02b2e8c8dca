"""``saleor-cart-recovery-app``: Django's manage for the app server (``migrate``,
``cart_recovery_dispatch``, ``cart_recovery_report``, ``cart_recovery_cleanup``, …)."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saleor_cart_recovery.app.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
