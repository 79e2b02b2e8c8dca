"""The Saleor adapter: the shop port implemented with Saleor 3.23's models and functions
(``shop``, ``offers``) and Saleor's authentication for staff endpoints (``auth``).

With ``plugin.py`` the only code that imports Saleor; the core never imports it.
"""
