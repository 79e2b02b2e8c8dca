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


# What a deliverability warning is about, as its sentence names it.
RATE_NAMES = {"bounce": gettext_lazy("bounce"), "complaint": gettext_lazy("complaint")}

# The funnel's stages as the pages name them (the key stays the CSS class and data-stage).
STAGES = {
    "reached": pgettext_lazy("funnel stage", "reached"),
    "sent": pgettext_lazy("funnel stage", "sent"),
    "clicked": pgettext_lazy("funnel stage", "clicked"),
    "recovered": pgettext_lazy("funnel stage", "recovered"),
}


def _num(value, suffix="") -> str:
    return "—" if value is None else f"{value}{suffix}"


def _interval(interval) -> str:
    if not interval:
        return ""
    return " " + _("(95 %% interval %(low)s to %(high)s)") % {"low": interval[0], "high": interval[1]}


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
    lines.append(
        "  "
        + _("lift per cart %(lift)s%(interval)s; per shopper %(shopper_lift)s%(shopper_interval)s")
        % {
            "lift": _num(r["lift_pct"], " pp"),
            "interval": _interval(r["lift_interval_pct"]),
            "shopper_lift": _num(r["shopper_lift_pct"], " pp"),
            "shopper_interval": _interval(r["shopper_lift_interval_pct"]),
        }
    )
    valid = r["lift_always_valid_interval_pct"]
    lines.append(
        "  "
        + _("verdict (valid at every look): %(verdict)s") % {"verdict": VERDICTS[r["lift_verdict"]]}
        + " — "
        + (
            _("always-valid interval %(low)s to %(high)s pp, p = %(p)s")
            % {"low": valid[0], "high": valid[1], "p": r["lift_p_value"]}
            if valid
            else _("needs %(minimum)s shoppers in each group") % {"minimum": r["min_recipients"]}
        )
        + " "
        + _("(on the %(treated)s + %(held)s shoppers whose %(follow_up)s follow-up ended)")
        % {
            "treated": r["treated"]["complete"]["shoppers"],
            "held": r["holdout"]["complete"]["shoppers"],
            "follow_up": r["follow_up"],
        }
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
        lines.append(
            "  "
            + _(
                "WARNING: %(what)s rate %(rate_pct)s %% over the last %(days)s days is above %(limit_pct)s "
                "%% "
                "(see docs/deliverability.md)"
            )
            % {**warning, "what": RATE_NAMES.get(warning["what"], warning["what"])}
        )
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
