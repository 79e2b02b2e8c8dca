"""Abandoned-cart recovery series for Saleor.

The core (everything outside ``plugin.py`` and ``saleor/``) never imports Saleor; it reaches the
shop through the port in :mod:`saleor_cart_recovery.shop`.
"""
