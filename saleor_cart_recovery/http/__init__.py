"""The plugin's HTTP endpoints under ``/plugins/channel/<slug>/saleor_cart_recovery/<path>`` and
the channel-less ``/plugins/saleor_cart_recovery/<path>`` (unsubscribe links, served even while the
plugin is off).

``router`` maps the path to an endpoint; ``base`` validates before anything acts; ``links`` serves
the links in emails (unsubscribe, tracked clicks); ``report_page`` and ``api`` are staff-only.
May import every core package; never Saleor (authentication goes through the shop port).
"""
