"""Routes ``<name>/<argument>`` under the plugin's paths to its endpoint: the channel's
``/plugins/channel/<slug>/saleor_cart_recovery/…`` (served while the plugin is active there) and
the channel-less ``/plugins/saleor_cart_recovery/…`` (served always: unsubscribe links, the
Dashboard pages, which pick their channel themselves, and the mail provider's event webhooks)."""

from django.http import HttpRequest, HttpResponse

from .api.view import GraphQLEndpoint
from .dashboard.endpoint import DashboardEndpoint
from .esp import ProviderEventsEndpoint
from .links import ClickEndpoint, UnsubscribeEndpoint
from .report_page import ReportEndpoint

ROUTES = {
    "unsubscribe": UnsubscribeEndpoint(),
    "click": ClickEndpoint(),
    "report": ReportEndpoint(),
    "graphql": GraphQLEndpoint(),
    "dashboard": DashboardEndpoint(),
    "esp": ProviderEventsEndpoint(),
}


def handle(request: HttpRequest, channel_slug: str | None, path: str) -> HttpResponse:
    """Route ``<name>/<argument>`` to its endpoint (``esp/<provider>/tracking``: an argument with
    one "/"); unknown paths are 404. ``channel_slug`` is
    ``None`` on the channel-less path, where only the endpoints that must always work answer."""
    name, _, arg = path.strip("/").partition("/")
    endpoint = ROUTES.get(name)
    if endpoint is None or (endpoint.needs_arg and not arg) or arg.count("/") > endpoint.arg_slashes:
        return HttpResponse(status=404)
    if channel_slug is None and not endpoint.serves_without_channel:
        return HttpResponse(status=404)
    return endpoint(request, channel_slug, arg)
