from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ...series.retention import cleanup, erase_address
from ...shop import get_shop, settings_or_none
from .. import LanguageCommand


class Command(LanguageCommand):
    # the help speaks the --help reader\'s language (Django reads it as str)
    help = gettext_lazy(
        "Delete carts and messages past each channel's retention period and the plugin's coupons that "
        "expired unused (beat runs this daily); or, with --erase, everything stored about one address."
    )  # type: ignore[assignment]

    def add_arguments(self, parser):
        parser.add_argument(
            "--erase",
            metavar="EMAIL",
            help=gettext_lazy(
                "erase this address's carts and messages in every channel (a guest's erasure request); "
                "its unsubscribes and bounces are kept as a keyed hash"
            ),
        )

    def handle(self, *args, erase: str | None = None, **options) -> None:
        shop = get_shop()
        with shop.write_access():
            if erase is not None:
                if "@" not in erase:
                    raise CommandError(_("--erase: '%(value)s' is not an email address") % {"value": erase})
                self.stdout.write(str(erase_address(erase)))
                return
            self.stdout.write(str(cleanup(timezone.now(), settings_or_none, shop)))
