from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ...series.retention import cleanup, erase_address
from ...shop import get_shop, settings_or_none


class Command(BaseCommand):
    help = (
        "Delete carts and messages past each channel's retention period and the plugin's coupons that "
        "expired unused (beat runs this daily); or, with --erase, everything stored about one address."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--erase",
            metavar="EMAIL",
            help="erase this address's carts and messages in every channel (a guest's erasure request); "
            "its unsubscribes and bounces are kept as a keyed hash",
        )

    def handle(self, *args, erase: str | None = None, **options) -> None:
        shop = get_shop()
        with shop.write_access():
            if erase is not None:
                if "@" not in erase:
                    raise CommandError(f"--erase: '{erase}' is not an email address")
                self.stdout.write(str(erase_address(erase)))
                return
            self.stdout.write(str(cleanup(timezone.now(), settings_or_none, shop)))
