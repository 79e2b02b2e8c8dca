"""The package's management commands (``commands/``) and what they share."""

from django.core.management.base import BaseCommand
from django.utils.translation import gettext_lazy as _

from ..languages import speaking


class LanguageCommand(BaseCommand):
    """A command that speaks Django's active language (``LANGUAGE_CODE``), or the one ``--language``
    names; a language without a catalog of ours reads English."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.add_argument(
            "--language", help=_("language of the output: en, tr or de (default: LANGUAGE_CODE)")
        )
        return parser

    def execute(self, *args, **options):
        language = options.pop("language", None)
        if not language:
            return super().execute(*args, **options)
        with speaking(language):
            return super().execute(*args, **options)
