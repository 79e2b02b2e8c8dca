"""The report as a plain-text table, drawn from :func:`.report_json.plain` data (the command's
default output; docs/experiments.md "Reading it" walks through one)."""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext_lazy

from .deliverability import WINDOWS

VERDICTS = {
    "positive": gettext_lazy("the reminders raise conversion"),
    "negative": gettext_lazy("the reminders lower conversion"),
    "inconclusive": gettext_lazy("not proven either way yet"),
}

# The funnel's stages as the pages name them (the key stays the CSS class and data-stage).
STAGES = {
    "reached": pgettext_lazy("funnel stage", "reached"),
    "sent": pgettext_lazy("funnel stage", "sent"),
    "clicked": pgettext_lazy("funnel stage", "clicked"),
    "recovered": pgettext_lazy("funnel stage", "recovered"),
}


def _num(value, suffix="") -> str:
    return "—" if value is None else f"{value}{suffix}"


def _lift(lift, interval, *, per_shopper: bool) -> str:
    """One lift and its 95 % interval, as a whole clause of the lift line."""
    values = {"lift": _num(lift, " pp")}
    if not interval:
        return (_("per shopper %(lift)s") if per_shopper else _("lift per cart %(lift)s")) % values
    values.update(low=interval[0], high=interval[1])
    if per_shopper:
        return _("per shopper %(lift)s (95 %% interval %(low)s to %(high)s)") % values
    return _("lift per cart %(lift)s (95 %% interval %(low)s to %(high)s)") % values


def report_table(r: dict) -> list[str]:
    """The lines of one experiment report."""
    currency = r["currency"]
    head = {
        "channel": r["channel"],
        "experiment": r["experiment"],
        "window": r["attribution_window"],
        "computed": r["computed_at"][:16].replace("T", " "),
    }
    lines = [
        (
            _(
                "Channel %(channel)s — experiment %(experiment)s (current) — window %(window)s — computed "
                "%(computed)s UTC"
            )
            if r["current"]
            else _(
                "Channel %(channel)s — experiment %(experiment)s (earlier settings) — window %(window)s — "
                "computed %(computed)s UTC"
            )
        )
        % head
    ]
    rows: list[tuple] = [
        (
            _("group"),
            _("carts"),
            _("shoppers"),
            _("orders"),
            _("kept"),
            _("conversion"),
            _("per shopper"),
            _("gross"),
            _("refunded"),
            _("net"),
        )
    ]
    for name, shown in (("treated", _("treated")), ("holdout", _("holdout"))):
        g = r[name]
        rows.append(
            (
                shown,
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
    per_cart = _lift(r["lift_pct"], r["lift_interval_pct"], per_shopper=False)
    per_shopper = _lift(r["shopper_lift_pct"], r["shopper_lift_interval_pct"], per_shopper=True)
    lines.append(f"  {per_cart}; {per_shopper}")
    valid = r["lift_always_valid_interval_pct"]
    verdict = {
        "verdict": VERDICTS[r["lift_verdict"]],
        "treated": r["treated"]["complete"]["shoppers"],
        "held": r["holdout"]["complete"]["shoppers"],
        "follow_up": r["follow_up"],
        "minimum": r["min_recipients"],
        "p": r["lift_p_value"],
        **({"low": valid[0], "high": valid[1]} if valid else {}),
    }
    lines.append(
        "  "
        + (
            _(
                "verdict (valid at every look): %(verdict)s — always-valid interval %(low)s to %(high)s pp, "
                "p = %(p)s (on the %(treated)s + %(held)s shoppers whose %(follow_up)s follow-up ended)"
            )
            if valid
            else _(
                "verdict (valid at every look): %(verdict)s — needs %(minimum)s shoppers in each group "
                "(on the %(treated)s + %(held)s shoppers whose %(follow_up)s follow-up ended)"
            )
        )
        % verdict
    )
    lines.append(
        "  "
        + _("incremental revenue (net) %(revenue)s %(currency)s")
        % {"revenue": _num(r["incremental_revenue"]), "currency": currency}
    )
    bounced = r["treated"]["bounced"]
    lines.append(
        "  "
        + ngettext(
            "bounced: %(n)s reminder refused for good (addresses suppressed)",
            "bounced: %(n)s reminders refused for good (addresses suppressed)",
            bounced,
        )
        % {"n": bounced}
    )
    lines += deliverability_lines(r.get("deliverability"))
    reminder, click = r["recovered_after_reminder"], r["recovered_after_click"]
    lines.append(
        "  "
        + _("attributed (not caused): recovered after a reminder %(reminder)s; after a click %(click)s")
        % {"reminder": _orders(reminder, currency), "click": _orders(click, currency)}
    )
    rows = [
        (
            _("step/variant"),
            _("carts"),
            _("sent"),
            _("clicked"),
            _("converted"),
            _("conv"),
            _("net revenue"),
            _("rev/cart"),
            _("attributed"),
            _("complete"),
            _("p vs best"),
            _("verdict"),
        )
    ]
    decisions = []
    for step in r["steps"]:
        for arm in step["arms"]:
            rows.append(_arm(f"{step['step']}/{arm['label']}", arm, tested=_tested(step["arms"])))
        if step["after_decision"]:
            since = _("%(step)s/%(variant)s since decided") % {
                "step": step["step"],
                "variant": step["decided"],
            }
            rows.append(_arm(since, step["after_decision"], compared=False))
        rows.append(_arm(_("%(step)s/all") % {"step": step["step"]}, step["total"], compared=False))
        if step["decided"]:
            decisions.append(
                _("step %(step)s subject %(variant)s since %(when)s")
                % {"step": step["step"], "variant": step["decided"], "when": step["decided_at"]}
            )
    for arm in r["cadences"]["arms"]:
        name = _("cadence %(label)s") % {"label": arm["label"]}
        rows.append(_arm(name, arm, tested=_tested(r["cadences"]["arms"])))
    cadences = r["cadences"]
    if cadences["after_decision"]:
        since = _("cadence %(label)s since decided") % {"label": cadences["decided"]}
        rows.append(_arm(since, cadences["after_decision"], compared=False))
    if cadences["decided"]:
        decisions.append(
            _("cadence %(label)s since %(when)s")
            % {"label": cadences["decided"], "when": cadences["decided_at"]}
        )
    lines += _rows(rows)
    lines += ["  " + _("automatic winner: %(decision)s") % {"decision": decision} for decision in decisions]
    return [*lines, ""]


def _orders(recovered: dict, currency: str) -> str:
    orders = recovered["orders"]
    return ngettext(
        "%(n)s order, %(revenue)s %(currency)s", "%(n)s orders, %(revenue)s %(currency)s", orders
    ) % {
        "n": orders,
        "revenue": recovered["revenue"],
        "currency": currency,
    }


def deliverability_lines(rates: dict | None) -> list[str]:
    """The channel's bounce and complaint rates (:func:`.deliverability.rates`) and its warnings."""
    if not rates:
        return []
    lines = []
    for days in WINDOWS:
        w = rates[f"{days}d"]
        lines.append(
            "  "
            + _(
                "deliverability, last %(days)s days: %(sent)s sent, %(delivered)s delivered (reported), "
                "bounce rate %(bounce_rate)s (%(bounced)s), complaint rate %(complaint_rate)s "
                "(%(complained)s), %(soft_bounced)s soft bounces, %(unsubscribed)s unsubscribed at the "
                "provider"
            )
            % {
                **w,
                "days": days,
                "bounce_rate": _num(w["bounce_rate_pct"], " %"),
                "complaint_rate": _num(w["complaint_rate_pct"], " %"),
            }
        )
    for warning in rates["warnings"]:
        if warning["what"] == "bounce":
            text = ngettext(
                "WARNING: bounce rate %(rate_pct)s %% over the last %(days)s day is above %(limit_pct)s %% "
                "(see docs/deliverability.md)",
                "WARNING: bounce rate %(rate_pct)s %% over the last %(days)s days is above %(limit_pct)s %% "
                "(see docs/deliverability.md)",
                warning["days"],
            )
        else:
            text = ngettext(
                "WARNING: complaint rate %(rate_pct)s %% over the last %(days)s day is above "
                "%(limit_pct)s %% (see docs/deliverability.md)",
                "WARNING: complaint rate %(rate_pct)s %% over the last %(days)s days is above "
                "%(limit_pct)s %% (see docs/deliverability.md)",
                warning["days"],
            )
        lines.append("  " + text % warning)
    return lines


def _tested(arms: list[dict]) -> bool:
    """Whether the arms were compared (each had ``min_recipients`` carts)."""
    return any(arm["p_value"] is not None for arm in arms)


def _arm(name: str, arm: dict, *, compared: bool = True, tested: bool = False) -> tuple:
    verdict = ""
    if compared:
        verdict = _("winner") if arm["winner"] else ("" if tested else _("not enough data"))
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
