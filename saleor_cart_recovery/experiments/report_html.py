"""The report as an HTML page, drawn from the same plain data as ``--json`` and the API
(:func:`.report_json.report_data`).

Templates get plain dicts and strings only (invariant 7); the page draws its charts with CSS bars,
no JavaScript and nothing loaded from elsewhere.
"""

from django.utils import timezone
from django.utils.translation import gettext as _

from ..templating import render
from .deliverability import for_display
from .report_table import STAGES, VERDICTS


def _width(value, largest) -> float:
    return round(100 * value / largest, 1) if largest else 0.0


def _bars(arms: list[dict]) -> None:
    top = max([arm["conversion_rate_pct"] or 0 for arm in arms] or [0])
    tested = any(arm["p_value"] is not None for arm in arms)
    for arm in arms:
        arm["width"] = _width(arm["conversion_rate_pct"] or 0, top)
        arm["verdict"] = _("winner") if arm["winner"] else ("" if tested else _("not enough data"))


def render_report_page(channel: str, reports: list[dict], *, since: str = "") -> str:
    """``reports`` is :func:`.report_json.report_data` (stored by the rollup or built now); in the
    active language (the endpoint's :func:`...languages.speaking`)."""
    experiments = []
    for data in reports:
        largest = max([s["total"]["carts"] for s in data["steps"]] or [0])
        for step in data["steps"]:
            total = step["total"]
            step["bars"] = [
                {"name": name, "label": STAGES[name], "value": value, "width": _width(value, largest)}
                for name, value in (
                    ("reached", total["carts"]),
                    ("sent", total["sent"]),
                    ("clicked", total["clicked"]),
                    ("recovered", total["attributed"]["orders"]),
                )
            ]
            _bars(step["arms"])
        _bars(data["cadences"]["arms"])
        top = max(data["treated"]["conversion_rate_pct"] or 0, data["holdout"]["conversion_rate_pct"] or 0)
        data["groups"] = [
            {
                "name": _("Treated"),
                "kind": "treated",
                **data["treated"],
                "width": _width(data["treated"]["conversion_rate_pct"] or 0, top),
            },
            {
                "name": _("Holdout"),
                "kind": "holdout",
                **data["holdout"],
                "width": _width(data["holdout"]["conversion_rate_pct"] or 0, top),
            },
        ]
        data["verdict_text"] = VERDICTS[data["lift_verdict"]]
        data["first_cart_day"] = (data["first_cart_at"] or "")[:10]
        data["last_cart_day"] = (data["last_cart_at"] or "")[:10]
        data["computed"] = data["computed_at"][:16].replace("T", " ")
        data["rates"] = for_display(data.get("deliverability"))
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
