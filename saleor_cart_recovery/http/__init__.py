"""The plugin's HTTP endpoints under ``/plugins/channel/<slug>/saleor_cart_recovery/<path>`` and
the channel-less ``/plugins/saleor_cart_recovery/<path>`` (unsubscribe links and the Dashboard
pages, served even while the plugin is off).

``router`` maps the path to an endpoint; ``base`` validates before anything acts; ``links`` serves
the links in emails (unsubscribe, tracked clicks); ``report_page``, ``api`` and ``dashboard`` (the
pages inside Saleor's Dashboard) are staff-only.
May import every core package; never Saleor (authentication goes through the shop port).
"""
