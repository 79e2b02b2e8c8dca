import json

from django.core.management.base import CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ...experiments.report_json import report_data
from ...experiments.report_table import report_table
from ...settings.parsers import parse_since
from ...shop import settings_or_none
from .. import LanguageCommand


class Command(LanguageCommand):
    # the help speaks the --help reader\'s language (Django reads it as str)
    help = gettext_lazy(
        "Show what the reminders recovered, per channel and experiment version: funnel by step, "
        "variants, holdout vs treated (see docs/experiments.md, 'Reading it')."
    )  # type: ignore[assignment]

    def add_arguments(self, parser):
        parser.add_argument("--channel", help=gettext_lazy("only this channel (slug)"))
        parser.add_argument(
            "--since", help=gettext_lazy("only carts first seen since: 2026-03-01, an ISO date-time or 30d")
        )
        parser.add_argument("--json", action="store_true", help=gettext_lazy("print JSON instead of a table"))
        parser.add_argument(
            "--fresh",
            action="store_true",
            help=gettext_lazy("build it now instead of showing the one the 10-minute rollup stored"),
        )

    def handle(self, *args, channel=None, since=None, json=False, fresh=False, **options):
        try:
            since_at = parse_since(since) if since else None
        except ValueError as exc:
            raise CommandError(f"--since: {exc}") from None
        data = report_data(
            channel=channel,
            since=since_at,
            settings_for=settings_or_none,
            progress=self._progress,
            fresh=fresh,
        )
        if json:
            self.stdout.write(_dumps(data))
            return
        if not data:
            self.stdout.write(
                _("No carts tracked in channel %(channel)s.") % {"channel": channel}
                if channel
                else _("No carts tracked.")
            )
        for experiment in data:
            for line in report_table(experiment):
                self.stdout.write(line)

    def _progress(self, done, total):
        self.stderr.write(_("report: %(done)s/%(total)s scans done") % {"done": done, "total": total})


def _dumps(data) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)
