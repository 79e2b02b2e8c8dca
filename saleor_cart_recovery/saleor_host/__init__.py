"""The Saleor adapter: the shop port implemented with Saleor's models and functions
(``shop``, ``offers``), Saleor's authentication for staff endpoints (``auth``), and the warning on
a Saleor version this release does not support (``version_check``).

With ``plugin.py`` the only code that imports Saleor; the core never imports it.
"""
