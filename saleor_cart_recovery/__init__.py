"""Abandoned-cart recovery series for Saleor.

At the root live what Django, Celery and Saleor look for by convention (``apps``, ``models``,
``migrations``, ``management``, ``tasks``, and ``plugin`` — the entry point), the shop port
(``shop``), the package's exceptions, its one template engine and the Saleor versions it supports
(``saleor_versions``). The core — ``settings``, ``series``, ``email``, ``experiments``, ``http`` —
never imports Saleor; ``plugin`` and ``saleor_host`` are the Saleor adapter. README "Layout" has the map.
"""
