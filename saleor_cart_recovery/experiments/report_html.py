"""The report as an HTML page, drawn from the same plain data as ``--json`` and the API
(:func:`.report_json.plain`).

Templates get plain dicts and strings only (invariant 7); the page draws its charts with CSS bars,
no JavaScript and nothing loaded from elsewhere.
"""

from django.utils import timezone

from ..templating import render
from .report import ExperimentReport
from .report_json import plain


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
    return render(
        "cart_recovery/report.html",
        {
            "channel": channel,
            "since": since,
            "experiments": experiments,
            "generated_at": timezone.now().strftime("%Y-%m-%d %H:%M UTC"),
        },
    )
