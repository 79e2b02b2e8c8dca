"""The report as a plain-text table, drawn from :func:`.report_json.plain` data (the command's
default output; README "Reading it" walks through one)."""

from django.utils.translation import gettext_lazy

VERDICTS = {
    "positive": gettext_lazy("the reminders raise conversion"),
    "negative": gettext_lazy("the reminders lower conversion"),
    "inconclusive": gettext_lazy("not proven either way yet"),
}


def _num(value, suffix="") -> str:
    return "—" if value is None else f"{value}{suffix}"


def _interval(interval) -> str:
    return f" (95 % interval {interval[0]} to {interval[1]})" if interval else ""


def report_table(r: dict) -> list[str]:
    """The lines of one experiment report."""
    currency = r["currency"]
    lines = [
        f"Channel {r['channel']} — experiment {r['experiment']}"
        f"{' (current)' if r['current'] else ' (earlier settings)'} — window {r['attribution_window']}"
        f" — computed {r['computed_at'][:16].replace('T', ' ')} UTC"
    ]
    rows: list[tuple] = [
        (
            "group",
            "carts",
            "shoppers",
            "orders",
            "kept",
            "conversion",
            "per shopper",
            "gross",
            "refunded",
            "net",
        )
    ]
    for name in ("treated", "holdout"):
        g = r[name]
        rows.append(
            (
                name,
                g["carts"],
                g["shoppers"],
                g["orders"],
                g["converted"],
                _num(g["conversion_rate_pct"], " %"),
                _num(g["shopper_rate_pct"], " %"),
                *g["revenue"].values(),
            )
        )
    lines += _rows(rows)
    lines.append(
        f"  lift per cart {_num(r['lift_pct'], ' pp')}{_interval(r['lift_interval_pct'])}; "
        f"per shopper {_num(r['shopper_lift_pct'], ' pp')}{_interval(r['shopper_lift_interval_pct'])}"
    )
    valid = r["lift_always_valid_interval_pct"]
    complete = f"{r['treated']['complete']['shoppers']} + {r['holdout']['complete']['shoppers']} shoppers"
    lines.append(
        f"  verdict (valid at every look): {VERDICTS[r['lift_verdict']]}"
        + (
            f" — always-valid interval {valid[0]} to {valid[1]} pp, p = {r['lift_p_value']}"
            if valid
            else f" — needs {r['min_recipients']} shoppers in each group"
        )
        + f" (on the {complete} whose {r['follow_up']} follow-up ended)"
    )
    lines.append(f"  incremental revenue (net) {_num(r['incremental_revenue'])} {currency}")
    lines.append(f"  bounced: {r['treated']['bounced']} reminder(s) refused for good (addresses suppressed)")
    reminder, click = r["recovered_after_reminder"], r["recovered_after_click"]
    lines.append(
        f"  attributed (not caused): recovered after a reminder {reminder['orders']} order(s), "
        f"{reminder['revenue']} {currency}; "
        f"after a click {click['orders']} order(s), {click['revenue']} {currency}"
    )
    rows = [
        (
            "step/variant",
            "carts",
            "sent",
            "clicked",
            "converted",
            "conv",
            "net revenue",
            "rev/cart",
            "attributed",
            "complete",
            "p vs best",
            "verdict",
        )
    ]
    decisions = []
    for step in r["steps"]:
        for arm in step["arms"]:
            rows.append(_arm(f"{step['step']}/{arm['label']}", arm, tested=_tested(step["arms"])))
        if step["after_decision"]:
            rows.append(
                _arm(
                    f"{step['step']}/{step['decided']} since decided", step["after_decision"], compared=False
                )
            )
        rows.append(_arm(f"{step['step']}/all", step["total"], compared=False))
        if step["decided"]:
            decisions.append(f"step {step['step']} subject {step['decided']} since {step['decided_at']}")
    for arm in r["cadences"]["arms"]:
        rows.append(_arm(f"cadence {arm['label']}", arm, tested=_tested(r["cadences"]["arms"])))
    cadences = r["cadences"]
    if cadences["after_decision"]:
        rows.append(
            _arm(f"cadence {cadences['decided']} since decided", cadences["after_decision"], compared=False)
        )
    if cadences["decided"]:
        decisions.append(f"cadence {cadences['decided']} since {cadences['decided_at']}")
    lines += _rows(rows)
    lines += [f"  automatic winner: {decision}" for decision in decisions]
    return [*lines, ""]


def _tested(arms: list[dict]) -> bool:
    """Whether the arms were compared (each had ``min_recipients`` carts)."""
    return any(arm["p_value"] is not None for arm in arms)


def _arm(name: str, arm: dict, *, compared: bool = True, tested: bool = False) -> tuple:
    verdict = ""
    if compared:
        verdict = "winner" if arm["winner"] else ("" if tested else "not enough data")
    return (
        name,
        arm["carts"],
        arm["sent"],
        arm["clicked"],
        arm["converted"],
        _num(arm["conversion_rate_pct"], " %"),
        arm["revenue"]["net"],
        _num(arm["revenue_per_cart"]),
        arm["attributed"]["orders"],
        f"{arm['complete']['converted']}/{arm['complete']['carts']}" if compared else "",
        _num(arm["p_value"]) if compared else "",
        verdict,
    )


def _rows(rows: list[tuple]) -> list[str]:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return [
        "  "
        + "  ".join(str(v).ljust(widths[0]) if i == 0 else str(v).rjust(widths[i]) for i, v in enumerate(row))
        for row in rows
    ]
