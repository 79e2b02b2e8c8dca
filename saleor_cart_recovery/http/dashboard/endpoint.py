"""``…/saleor_cart_recovery/dashboard/<page>``: the Dashboard's iframe pages.

``dashboard/`` (and ``dashboard/customer``, the customer page's action) is a shell with no data:
its script waits for the Dashboard's AppBridge handshake, keeps the token in memory only and asks
for each page's server-rendered fragment with ``Authorization: Bearer <token>`` in a POST (the
page's parameters — checkout tokens, shoppers' addresses — never appear in a URL). Fragments answer
401 without a token Saleor signed for our app, 403 for a user without MANAGE_CHECKOUTS or without
access to the channel (or, saving the settings, without MANAGE_PLUGINS), 400 for a bad parameter —
each with a fragment saying so; never 500.

Headers: the shell may be framed by the Dashboard origins given to ``cart_recovery_dashboard``
(``frame-ancestors``; any origin when none were given — the page shows nothing without a token
the framing page would have to hold already); scripts and styles only from this endpoint; no
referrer; nothing cached.
"""

import json
import logging
from importlib import resources

from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ...exceptions import BadToken, DashboardRefused
from ...formatting import Formatter, locale_of
from ...languages import accept_language_locale, speaking
from ...shop import DashboardViewer, get_shop
from ...templating import render
from ..base import Endpoint
from .views import TABS, VIEWS, Invalid, Page

logger = logging.getLogger(__name__)

ASSETS = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
SHELLS = {"": "overview", "customer": "carts"}  # shell path -> the page it opens first
TAB_NAMES = (
    ("overview", gettext_lazy("Overview")),
    ("carts", gettext_lazy("Carts")),
    ("test", gettext_lazy("Test send")),
    ("settings", gettext_lazy("Settings")),
)
PARTIAL = {"check-connection"}  # answers that replace one region of the page, not the page
_FRAGMENT_CSP = "default-src 'none'; frame-ancestors 'none'"


class DashboardEndpoint(Endpoint):
    methods = ("GET", "POST")
    needs_arg = False
    serves_without_channel = True  # one app URL for every channel: the page picks the channel

    def validate(self, channel_slug: str | None, arg: str) -> tuple[str | None, str]:
        if arg in SHELLS or arg in ASSETS or arg in VIEWS:
            return channel_slug, arg
        raise BadToken(f"no dashboard page '{arg}'")

    def invalid(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(status=404)

    def get(self, request: HttpRequest, claim: tuple[str | None, str]) -> HttpResponse:
        channel_slug, name = claim
        if name in ASSETS:
            return _asset(name)
        if name in SHELLS:
            return self.shell(request, channel_slug, name)
        return _not_allowed("POST")  # pages are asked for with POST (nothing of them in a URL)

    def post(self, request: HttpRequest, claim: tuple[str | None, str]) -> HttpResponse:
        channel_slug, name = claim
        if name not in VIEWS:
            return _not_allowed("GET")
        return self.fragment(request, channel_slug, name, request.POST)

    def shell(self, request: HttpRequest, channel_slug: str | None, name: str) -> HttpResponse:
        # The Dashboard joins the extension's URL and its query with url-join, which drops the
        # slash before "?" (…/dashboard?id=…): the assets' base is taken from the last
        # "/dashboard" of the path, with or without its slash.
        base = request.path[: request.path.rindex("/dashboard")] + "/dashboard/"
        try:
            origins = get_shop().dashboard_origins()
        except Exception:  # the shell still loads; framing then follows the default
            logger.exception("cart recovery dashboard: could not read the allowed Dashboard origins")
            origins = ()
        locale = first_locale(request)
        with speaking(locale) as language:
            html = render(
                "cart_recovery/dashboard/shell.html",
                {
                    "base": base,
                    "first_page": SHELLS[name],
                    "origins": json.dumps(list(origins)),
                    "channel": channel_slug or "",
                    "language": language,
                    "locale": locale or "",
                    "strings": script_strings(),
                },
            )
        response = HttpResponse(html, content_type="text/html; charset=utf-8")
        response["Content-Security-Policy"] = (
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src * data:; "
            "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
            f"frame-ancestors {' '.join(origins) if origins else '*'}"
        )
        return _private(response)

    def fragment(
        self, request: HttpRequest, channel_slug: str | None, name: str, params: QueryDict
    ) -> HttpResponse:
        """The page in the Dashboard's language (``X-Dashboard-Locale``), its messages included."""
        fmt = Formatter(locale_of(request.headers.get("X-Dashboard-Locale")))
        with speaking(fmt.locale):
            return self._fragment(request, channel_slug, name, params, fmt)

    def _fragment(
        self, request: HttpRequest, channel_slug: str | None, name: str, params: QueryDict, fmt: Formatter
    ) -> HttpResponse:
        try:
            viewer = get_shop().dashboard_viewer(_bearer(request))
        except DashboardRefused as exc:
            return _message(exc.status, exc.message)
        except Exception:
            logger.exception("cart recovery dashboard: could not check the token")
            return _message(503, _("The Dashboard token could not be checked right now; try again."))
        if not viewer.channels:
            return _message(403, _("Your permission groups give you access to no channel."))
        slug = params.get("channel") or channel_slug or _first_channel(viewer)
        channel = viewer.channel(slug)
        if channel is None:
            return _message(403, _("You have no access to the channel '%(channel)s'.") % {"channel": slug})
        context = {
            "page_name": name,
            "tab": TABS[name],
            "tabs": [{"name": tab, "label": label} for tab, label in TAB_NAMES],
            "channel": {"slug": channel.slug, "name": channel.name, "active": channel.active},
            "channels": [{"slug": c.slug, "name": c.name, "active": c.active} for c in viewer.channels],
            "viewer": viewer.email,
            "locale": fmt.locale,
            "strings": script_strings(),
        }
        status = 200
        data: dict = {}
        try:
            try:
                template, data = VIEWS[name](Page(viewer=viewer, channel=channel, fmt=fmt), params)
                body = render(f"cart_recovery/dashboard/{template}", {**context, **data})
            except Invalid as exc:  # shown in the page, the tabs and channel picker still there
                status = 400
                if exc.form is not None:
                    template, data = exc.form
                    body = render(f"cart_recovery/dashboard/{template}", {**context, **data})
                else:
                    body = render(
                        "cart_recovery/dashboard/message.html",
                        {"status": 400, "text": exc.message, "field": exc.field},
                    )
            except DashboardRefused as exc:  # an action the viewer may not take (saving settings)
                status = exc.status
                body = render("cart_recovery/dashboard/message.html", {"status": status, "text": exc.message})
            if name not in PARTIAL:
                # a view that switched the channel on or off says so for the frame's picker and notice
                shown = {key: data[key] for key in ("channel", "channels") if key in data}
                body = render("cart_recovery/dashboard/frame.html", {**context, **shown, "body": body})
        except Exception:
            logger.exception("cart recovery dashboard: page %s of channel %s failed", name, channel.slug)
            return _message(
                503, _("This page could not be built right now (the error is logged); try again.")
            )
        return _private(HttpResponse(body, status=status, content_type="text/html; charset=utf-8"))


def first_locale(request: HttpRequest) -> str | None:
    """The shell's locale before the Dashboard has said anything: ``?locale=`` when the iframe's URL
    carries one (the app-sdk's convention; Dashboard 3.23 does not add it to an extension's URL),
    else the browser's ``Accept-Language`` (its first language we have a catalog for, as the
    browser names it, so numbers follow ``de-CH``); ``None`` when neither names one. The page
    follows the Dashboard's ``localeChanged`` from then on."""
    return request.GET.get("locale") or accept_language_locale(request.headers.get("Accept-Language"))


def _bearer(request: HttpRequest) -> str:
    scheme, _space, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise DashboardRefused(401, _("Open Cart Recovery from the Saleor Dashboard."))
    return token.strip()


def script_strings() -> str:
    """What the page's script says itself (waiting, loading, failures), in the page's language: the
    shell and every page carry it, so the script needs no catalog of its own ({status} is filled
    in by the script)."""
    return json.dumps(
        {
            "waiting": _("Waiting for the Saleor Dashboard…"),
            "loading": _("Loading…"),
            "answered": _("The page answered {status}."),
            "unreachable": _("The page could not be loaded: check the connection and try again."),
            "signIn": _(
                "Open Cart Recovery from the Saleor Dashboard (Customers → Cart recovery): "
                "this page needs its sign-in."
            ),
        },
        ensure_ascii=False,
    )


def _first_channel(viewer: DashboardViewer) -> str:
    active = [channel for channel in viewer.channels if channel.active]
    return (active or list(viewer.channels))[0].slug


def _message(status: int, text: str, field: str = "") -> HttpResponse:
    html = render("cart_recovery/dashboard/message.html", {"status": status, "text": text, "field": field})
    response = HttpResponse(html, status=status, content_type="text/html; charset=utf-8")
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="saleor-dashboard"'
    return _private(response)


def _asset(name: str) -> HttpResponse:
    content = (resources.files("saleor_cart_recovery") / "static" / "cart_recovery" / name).read_bytes()
    response = HttpResponse(content, content_type=ASSETS[name])
    response["Cache-Control"] = "public, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _not_allowed(method: str) -> HttpResponse:
    response = HttpResponse(status=405)
    response["Allow"] = method
    return response


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Content-Type-Options"] = "nosniff"
    response["Vary"] = "Authorization"
    response.setdefault("Content-Security-Policy", _FRAGMENT_CSP)
    return response
