"""The reminder email: plain template data (``compose``, ``offers``), rendering with CSS inlined once
per template (``render``), the copy and money in the shopper's language (``i18n``), signed link
tokens (``tokens``) and SMTP hand-over (``transport``).

May import ``settings``, ``templating`` and the shop port; never ``series``, ``http`` or Saleor.
"""
