"""``{APP_URL}/…``: the App's own endpoints and the plugin's paths, mirrored."""

from django.urls import path, re_path

from . import views

urlpatterns = [
    path("api/manifest", views.manifest_view),
    path("api/register", views.register),
    path("webhooks/<slug:name>", views.webhook),
    re_path(r"^channel/(?P<channel_slug>[.0-9A-Za-z_\-]+)/(?P<path>.*)$", views.channel_path),
    re_path(r"^(?P<path>(?:unsubscribe|dashboard|esp)(?:/.*)?)$", views.channel_less_path),
]
