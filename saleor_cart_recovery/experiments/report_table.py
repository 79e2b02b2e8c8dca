"""The report as a plain-text table, drawn from :func:`.report_json.plain` data (the command's
default output; README "Reading the report" walks through one)."""


def _num(value, suffix="") -> str:
    return "—" if value is None else f"{value}{suffix}"


def report_table(r: dict) -> list[str]:
    """The lines of one experiment report."""
    currency = r["currency"]
    lines = [
        f"Channel {r['channel']} — experiment {r['experiment']}"
        f"{' (current)' if r['current'] else ' (earlier settings)'} — window {r['attribution_window']}"
    ]
    rows: list[tuple] = [("group", "carts", "orders", "conversion", "revenue")]
    for name in ("treated", "holdout"):
        g = r[name]
        rows.append((name, g["carts"], g["converted"], _num(g["conversion_rate_pct"], " %"), g["revenue"]))
    lines += _rows(rows)
    interval = r["lift_interval_pct"]
    lines.append(
        f"  lift {_num(r['lift_pct'], ' pp')}"
        + (f" (95 % interval {interval[0]} to {interval[1]})" if interval else "")
        + f", incremental revenue {_num(r['incremental_revenue'])} {currency}"
    )
    lines.append(f"  bounced: {r['treated']['bounced']} reminder(s) refused for good (addresses suppressed)")
    reminder, click = r["recovered_after_reminder"], r["recovered_after_click"]
    lines.append(
        f"  recovered after a reminder: {reminder['orders']} order(s), {reminder['revenue']} {currency}; "
        f"after a click: {click['orders']} order(s), {click['revenue']} {currency}"
    )
    rows = [
        ("step/variant", "carts", "sent", "clicked", "recovered", "conv", "revenue", "rev/recip", "P(best)")
    ]
    for step in r["steps"]:
        for arm in [step["total"], *step["variants"]]:
            rows.append(_arm(f"{step['step']}/{arm['label']}", arm))
    for arm in r["cadences"]:
        rows.append(_arm(f"cadence {arm['label']}", arm))
    return [*lines, *_rows(rows), ""]


def _arm(name: str, arm: dict) -> tuple:
    return (
        name,
        arm["carts"],
        arm["sent"],
        arm["clicked"],
        arm["converted"],
        _num(arm["conversion_rate_pct"], " %"),
        arm["revenue"],
        _num(arm["revenue_per_recipient"]),
        _num(arm["probability_best_pct"], " %"),
    )


def _rows(rows: list[tuple]) -> list[str]:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return [
        "  "
        + "  ".join(str(v).ljust(widths[0]) if i == 0 else str(v).rjust(widths[i]) for i, v in enumerate(row))
        for row in rows
    ]
