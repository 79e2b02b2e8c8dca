"""The report as an HTML page, drawn from the same plain data as ``--json`` and the API
(:func:`.report_json.report_data`).

Templates get plain dicts and strings only (invariant 7): every number a person reads — counts,
money, conversion rates, lifts, p-values, dates — is written here by a :class:`...formatting.Formatter`
in the reader's locale; the bars' CSS widths stay machine numbers. The page draws its charts with CSS
bars, no JavaScript and nothing loaded from elsewhere.
"""

from datetime import date

from django.utils import timezone
from django.utils.translation import gettext as _

from ..formatting import Formatter
from ..templating import render
from .deliverability import for_display
from .report_table import STAGES, VERDICTS


def bar_width(value, largest) -> float:
    """A bar's length in % of the largest value shown beside it."""
    return round(100 * value / largest, 1) if largest else 0.0


def funnel_bars(step: dict, largest: int, fmt: Formatter) -> list[dict]:
    """A step's funnel (reached, sent, clicked, recovered) as the pages draw it: each stage's name
    (CSS class), label, value in the reader's locale and width in % of ``largest``."""
    total = step["total"]
    stages = (
        ("reached", total["carts"]),
        ("sent", total["sent"]),
        ("clicked", total["clicked"]),
        ("recovered", total["attributed"]["orders"]),
    )
    return [
        {"name": name, "label": STAGES[name], "value": fmt.number(value), "width": bar_width(value, largest)}
        for name, value in stages
    ]


def _day(value: str | None, fmt: Formatter) -> str:
    return fmt.when_day(date.fromisoformat(value[:10])) if value else "—"


def _revenue(revenue: dict, fmt: Formatter, currency: str) -> dict:
    return {name: fmt.money(amount, currency) for name, amount in revenue.items()}


def _arms(arms: list[dict], fmt: Formatter, currency: str) -> list[dict]:
    top = max([arm["conversion_rate_pct"] or 0 for arm in arms] or [0])
    tested = any(arm["p_value"] is not None for arm in arms)
    return [
        {
            "label": arm["label"],
            "carts": fmt.number(arm["carts"]),
            "sent": fmt.number(arm["sent"]),
            "clicked": fmt.number(arm["clicked"]),
            "converted": fmt.number(arm["converted"]),
            "conversion_rate": fmt.pct(arm["conversion_rate_pct"]),
            "revenue": _revenue(arm["revenue"], fmt, currency),
            "revenue_per_cart": fmt.money(arm["revenue_per_cart"], currency),
            "attributed": fmt.number(arm["attributed"]["orders"]),
            "complete": {name: fmt.number(count) for name, count in arm["complete"].items()},
            "p_value": "" if arm["p_value"] is None else fmt.decimal(arm["p_value"], 4),
            "winner": arm["winner"],
            "width": bar_width(arm["conversion_rate_pct"] or 0, top),
            "verdict": _("winner") if arm["winner"] else ("" if tested else _("not enough data")),
        }
        for arm in arms
    ]


def _arm_set(arm_set: dict, fmt: Formatter, currency: str) -> dict:
    after = arm_set["after_decision"]
    return {
        "arms": _arms(arm_set["arms"], fmt, currency),
        "decided": arm_set["decided"],
        "decided_at": fmt.when(arm_set["decided_at"]),
        "after_decision": {"carts": after["carts"], "shown": fmt.number(after["carts"])} if after else None,
    }


def _group(name: str, kind: str, group: dict, top: float, fmt: Formatter, currency: str) -> dict:
    return {
        "name": name,
        "kind": kind,
        "carts": group["carts"],  # the plural form is chosen by the count itself
        "carts_shown": fmt.number(group["carts"]),
        **{key: fmt.number(group[key]) for key in ("shoppers", "orders", "converted")},
        "conversion_rate": fmt.pct(group["conversion_rate_pct"]),
        "shopper_rate": fmt.pct(group["shopper_rate_pct"]),
        "revenue": _revenue(group["revenue"], fmt, currency),
        "width": bar_width(group["conversion_rate_pct"] or 0, top),
    }


def _interval(interval: list | None, fmt: Formatter) -> list[str] | None:
    return [fmt.decimal(interval[0]), fmt.decimal(interval[1])] if interval else None


def _experiment(data: dict, fmt: Formatter) -> dict:
    currency = data["currency"]
    largest = max([s["total"]["carts"] for s in data["steps"]] or [0])
    treated, held = data["treated"], data["holdout"]
    top = max(treated["conversion_rate_pct"] or 0, held["conversion_rate_pct"] or 0)
    steps = []
    for step in data["steps"]:
        steps.append(
            {
                "step": step["step"],
                "bars": funnel_bars(step, largest, fmt),
                **_arm_set(step, fmt, currency),
            }
        )
    return {
        "experiment": data["experiment"],
        "current": data["current"],
        "computed": fmt.when(data["computed_at"]),
        "first_cart_day": _day(data["first_cart_at"], fmt),
        "last_cart_day": _day(data["last_cart_at"], fmt),
        "attribution_window": data["attribution_window"],
        "follow_up": data["follow_up"],
        "min_recipients": fmt.number(data["min_recipients"]),
        "incremental_revenue": fmt.money(data["incremental_revenue"], currency),
        "recovered_after_reminder": {
            "orders": fmt.number(data["recovered_after_reminder"]["orders"]),
            "revenue": fmt.money(data["recovered_after_reminder"]["revenue"], currency),
        },
        "recovered_after_click": {
            "orders": fmt.number(data["recovered_after_click"]["orders"]),
            "revenue": fmt.money(data["recovered_after_click"]["revenue"], currency),
        },
        "bounced": fmt.number(treated["bounced"]),
        "rates": for_display(data.get("deliverability"), fmt),
        "groups": [
            _group(_("Treated"), "treated", treated, top, fmt, currency),
            _group(_("Holdout"), "holdout", held, top, fmt, currency),
        ],
        "lift": None if data["lift_pct"] is None else fmt.decimal(data["lift_pct"]),
        "lift_interval": _interval(data["lift_interval_pct"], fmt),
        "shopper_lift": fmt.decimal(data["shopper_lift_pct"]),
        "shopper_lift_interval": _interval(data["shopper_lift_interval_pct"], fmt),
        "always_valid_interval": _interval(data["lift_always_valid_interval_pct"], fmt),
        "lift_p_value": fmt.decimal(data["lift_p_value"], 4),
        "verdict_text": VERDICTS[data["lift_verdict"]],
        "treated_complete": fmt.number(treated["complete"]["shoppers"]),
        "held_complete": fmt.number(held["complete"]["shoppers"]),
        "steps": steps,
        "cadences": _arm_set(data["cadences"], fmt, currency),
    }


def render_report_page(channel: str, reports: list[dict], fmt: Formatter, *, since: str = "") -> str:
    """``reports`` is :func:`.report_json.report_data` (stored by the rollup or built now); in the
    active language (the endpoint's :func:`...languages.speaking`), numbers in ``fmt``'s locale."""
    return render(
        "cart_recovery/report.html",
        {
            "channel": channel,
            "since": since,
            "experiments": [_experiment(data, fmt) for data in reports],
            "generated_at": fmt.when(timezone.now()),
        },
    )
