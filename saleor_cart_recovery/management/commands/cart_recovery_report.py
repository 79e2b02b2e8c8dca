import json

from django.core.management.base import BaseCommand, CommandError

from ... import report as report_module
from ...report import report_data
from ...report_page import parse_since
from ...shop import get_shop


def _num(value, suffix=""):
    return "—" if value is None else f"{value}{suffix}"


class Command(BaseCommand):
    help = (
        "Show what the reminders recovered, per channel and experiment version: funnel by step, "
        "variants, holdout vs treated (see README 'Reading the report')."
    )

    def add_arguments(self, parser):
        parser.add_argument("--channel", help="only this channel (slug)")
        parser.add_argument(
            "--since", help="only carts first seen since: 2026-03-01, an ISO date-time or 30d"
        )
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def handle(self, *args, channel=None, since=None, json=False, **options):
        try:
            since_at = parse_since(since) if since else None
        except ValueError as exc:
            raise CommandError(f"--since: {exc}") from None
        shop = get_shop()
        data = report_data(
            channel=channel, since=since_at, settings_for=shop.channel_settings, progress=self._progress
        )
        if json:
            self.stdout.write(_dumps(data))
            return
        if not data:
            self.stdout.write("No carts tracked" + (f" in channel {channel}" if channel else "") + ".")
        for report in data:
            self._table(report)

    def _progress(self, done, total):
        if total > report_module.CHUNK:  # a scan of one step needs no progress line
            self.stderr.write(f"scanned {done}/{total} cart ids ({100 * done // total} %)")

    def _table(self, r):
        w = self.stdout.write
        currency = r["currency"]
        w(
            f"Channel {r['channel']} — experiment {r['experiment']}"
            f"{' (current)' if r['current'] else ' (earlier settings)'} — window {r['attribution_window']}"
        )
        rows = [("group", "carts", "orders", "conversion", "revenue")]
        for name in ("treated", "holdout"):
            g = r[name]
            rows.append(
                (name, g["carts"], g["converted"], _num(g["conversion_rate_pct"], " %"), g["revenue"])
            )
        self._rows(rows)
        interval = r["lift_interval_pct"]
        w(
            f"  lift {_num(r['lift_pct'], ' pp')}"
            + (f" (95 % interval {interval[0]} to {interval[1]})" if interval else "")
            + f", incremental revenue {_num(r['incremental_revenue'])} {currency}"
        )
        reminder, click = r["recovered_after_reminder"], r["recovered_after_click"]
        w(
            f"  recovered after a reminder: {reminder['orders']} order(s), {reminder['revenue']} {currency}; "
            f"after a click: {click['orders']} order(s), {click['revenue']} {currency}"
        )
        rows = [
            (
                "step/variant",
                "carts",
                "sent",
                "clicked",
                "recovered",
                "conv",
                "revenue",
                "rev/recip",
                "P(best)",
            )
        ]
        for step in r["steps"]:
            for arm in [step["total"], *step["variants"]]:
                rows.append(self._arm(f"{step['step']}/{arm['label']}", arm))
        for arm in r["cadences"]:
            rows.append(self._arm(f"cadence {arm['label']}", arm))
        self._rows(rows)
        w("")

    @staticmethod
    def _arm(name, arm):
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

    def _rows(self, rows):
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            cells = [
                str(v).ljust(widths[0]) if i == 0 else str(v).rjust(widths[i]) for i, v in enumerate(row)
            ]
            self.stdout.write("  " + "  ".join(cells))


def _dumps(data) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)
