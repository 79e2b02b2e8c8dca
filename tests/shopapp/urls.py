"""The same URL shape Saleor routes to ``plugin.webhook``."""

from django.urls import re_path

from saleor_cart_recovery.http.router import handle

urlpatterns = [
    re_path(
        r"^plugins/channel/(?P<channel_slug>[.0-9A-Za-z_\-]+)/saleor_cart_recovery/(?P<path>.*)$",
        lambda request, channel_slug, path: handle(request, channel_slug, path),
    ),
    # Saleor's channel-less plugin path, routed whether or not the plugin is active.
    re_path(
        r"^plugins/saleor_cart_recovery/(?P<path>.*)$",
        lambda request, path: handle(request, None, path),
    ),
]
