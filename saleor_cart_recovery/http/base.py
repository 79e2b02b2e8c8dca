"""The base of every endpoint under the plugin's paths (see :mod:`.router`).

Validate first, then act: :class:`Endpoint` checks the method, the caller (:meth:`authorize`) and
the path's argument (:meth:`validate`, raising :class:`BadToken`) and answers 4xx before any
handler runs. Saleor does no authentication for plugin URLs, so staff-only endpoints derive from
:class:`StaffEndpoint`, which checks Saleor's own tokens through the shop port.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from ..exceptions import BadToken
from ..languages import from_accept_language, speaking
from ..shop import get_shop


class Endpoint:
    """Validate, then act. Subclasses implement :meth:`validate` and the HTTP methods they allow."""

    methods: tuple[str, ...] = ()
    needs_arg = True  # the path carries a credential or id after the endpoint's name
    arg_slashes = 0  # how many "/" that argument may contain
    # Also served on Saleor's channel-less plugin path (``channel_slug`` is then ``None``), which
    # Saleor routes even while the plugin is inactive: only for links that must always work.
    serves_without_channel = False

    def __call__(self, request: HttpRequest, channel_slug: str | None, arg: str) -> HttpResponse:
        if request.method not in self.methods:
            response = HttpResponse(status=405)
            response["Allow"] = ", ".join(self.methods)
            return response
        refused = self.authorize(request, channel_slug)
        if refused is not None:
            return refused
        try:
            claim = self.validate(channel_slug, arg)
        except BadToken:
            return self.invalid(request)
        return getattr(self, request.method.lower())(request, claim)

    def authorize(self, request: HttpRequest, channel_slug: str | None) -> HttpResponse | None:
        """A 401/403 response for a request that may not use this endpoint; links in emails
        carry their credential in the token instead, so the default lets everyone through."""
        return None

    def validate(self, channel_slug: str | None, arg: str):
        raise NotImplementedError

    def invalid(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(status=400)


class StaffEndpoint(Endpoint):
    """For staff users and apps with MANAGE_CHECKOUTS or MANAGE_PLUGINS only (Saleor's own tokens):
    401 without valid credentials, 403 without the permission or without access to the channel.
    The path names the endpoint only; handlers get the channel's slug."""

    needs_arg = False

    def validate(self, channel_slug: str | None, arg: str) -> str | None:
        if arg:
            raise BadToken("this endpoint takes no argument")
        return channel_slug

    def invalid(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(status=404)

    def authorize(self, request, channel_slug):
        """The refusal in the caller's ``Accept-Language`` (a person reads it, in a browser or in
        an API client's answer)."""
        allowed = get_shop().staff_can_view_reports(request, channel_slug)
        if allowed:
            return None
        with speaking(from_accept_language(request.headers.get("Accept-Language"))):
            if allowed is None:
                response = self.refuse(
                    _("Authentication required: send a Saleor staff or app token (Authorization: Bearer …)."),
                    401,
                )
                response["WWW-Authenticate"] = 'Bearer realm="saleor"'
                return response
            return self.refuse(
                _("This needs the MANAGE_CHECKOUTS or MANAGE_PLUGINS permission and access to this channel."),
                403,
            )

    def refuse(self, message: str, status: int) -> HttpResponse:
        return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def json_response(data: dict, status: int) -> JsonResponse:
    response = JsonResponse(data, status=status)
    response["Cache-Control"] = "no-store"
    return response
