"""The owner's report page (staff and apps only); ``experiments.report_html`` draws it."""

from django.http import HttpResponse

from ..experiments.report_html import render_report_page
from ..experiments.report_json import report_data
from ..formatting import Formatter, locale_of
from ..languages import accept_language_locale, speaking
from ..settings.parsers import parse_since
from ..shop import settings_or_none
from .base import StaffEndpoint


class ReportEndpoint(StaffEndpoint):
    """The owner's report page."""

    methods = ("GET",)

    def get(self, request, channel_slug):
        """In the browser's language (``Accept-Language``) when we have a catalog for it, numbers and
        dates in the browser's locale for that language (``de-CH``)."""
        locale = accept_language_locale(request.headers.get("Accept-Language"))
        with speaking(locale):
            return self._page(request, channel_slug, Formatter(locale_of(locale)))

    def _page(self, request, channel_slug, fmt: Formatter):
        since_text = request.GET.get("since", "")
        try:
            since = parse_since(since_text) if since_text else None
        except ValueError as exc:
            return HttpResponse(str(exc), status=400, content_type="text/plain")
        fresh = request.GET.get("fresh", "") not in ("", "0", "false")
        reports = report_data(channel=channel_slug, since=since, settings_for=settings_or_none, fresh=fresh)
        response = HttpResponse(
            render_report_page(channel_slug, reports, fmt, since=since_text),
            content_type="text/html; charset=utf-8",
        )
        response["Cache-Control"] = "no-store"
        response["X-Robots-Tag"] = "noindex"
        return response
