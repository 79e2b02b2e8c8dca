"""The report as an HTML page (its plain data, shared with ``--json`` and the API, is
:func:`report.plain`), and the ``since`` argument every way of reading the report accepts.

Templates get plain dicts and strings only (invariant 7); the page draws its charts with CSS bars,
no JavaScript and nothing loaded from elsewhere.
"""

from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources

from django.template import Context, Engine
from django.utils import timezone

from .durations import format_duration, parse_duration
from .report import ExperimentReport, plain

_TEMPLATE_DIR = resources.files("saleor_cart_recovery") / "templates"


def parse_since(text: str) -> datetime:
    """``2026-03-01`` (UTC midnight), an ISO date-time, or a duration back from now (``30d``)."""
    value = text.strip()
    try:
        return timezone.now() - parse_duration(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"'{value}' is not a date (2026-03-01), date-time or duration (30d)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@cache
def _engine() -> Engine:
    return Engine(dirs=[str(_TEMPLATE_DIR)], autoescape=True)


def _width(value, largest) -> float:
    return round(100 * value / largest, 1) if largest else 0.0


def render_report_page(channel: str, reports: list[ExperimentReport], *, since: str = "") -> str:
    experiments = []
    for report in reports:
        data = plain(report)
        largest = max([s["total"]["carts"] for s in data["steps"]] or [0])
        for step in data["steps"]:
            step["bars"] = [
                {"name": name, "value": step["total"][key], "width": _width(step["total"][key], largest)}
                for name, key in (
                    ("reached", "carts"),
                    ("sent", "sent"),
                    ("clicked", "clicked"),
                    ("recovered", "converted"),
                )
            ]
            top = max([v["conversion_rate_pct"] or 0 for v in step["variants"]] or [0])
            for variant in step["variants"]:
                variant["width"] = _width(variant["conversion_rate_pct"] or 0, top)
        top = max([c["conversion_rate_pct"] or 0 for c in data["cadences"]] or [0])
        for cadence in data["cadences"]:
            cadence["width"] = _width(cadence["conversion_rate_pct"] or 0, top)
        top = max(data["treated"]["conversion_rate_pct"] or 0, data["holdout"]["conversion_rate_pct"] or 0)
        data["groups"] = [
            {
                "name": "Treated",
                **data["treated"],
                "width": _width(data["treated"]["conversion_rate_pct"] or 0, top),
            },
            {
                "name": "Holdout",
                **data["holdout"],
                "width": _width(data["holdout"]["conversion_rate_pct"] or 0, top),
            },
        ]
        data["first_cart_day"] = report.first_cart_at.strftime("%Y-%m-%d") if report.first_cart_at else ""
        data["last_cart_day"] = report.last_cart_at.strftime("%Y-%m-%d") if report.last_cart_at else ""
        experiments.append(data)
    template = _engine().get_template("cart_recovery/report.html")
    return template.render(
        Context(
            {
                "channel": channel,
                "since": since,
                "experiments": experiments,
                "generated_at": timezone.now().strftime("%Y-%m-%d %H:%M UTC"),
                "window_default": format_duration(timedelta(days=7)),
            }
        )
    )
