from urllib.parse import urlsplit

from django.core.management.base import CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ...shop import get_shop
from .. import LanguageCommand


class Command(LanguageCommand):
    # the help speaks the --help reader\'s language (Django reads it as str)
    help = gettext_lazy(
        "Put Cart Recovery into the Saleor Dashboard: one app 'Cart Recovery' (MANAGE_CHECKOUTS) with a "
        "page under Customers and a 'Cart recovery' action on each customer's page, both served by the "
        "plugin's endpoint. Run it again to update; --remove takes it out."
    )  # type: ignore[assignment]

    def add_arguments(self, parser):
        parser.add_argument(
            "--remove", action="store_true", help=gettext_lazy("remove the app and its extensions")
        )
        parser.add_argument(
            "--url",
            help=gettext_lazy(
                "the public URL of Saleor's API server, e.g. https://api.shop.example.com (or its "
                "GraphQL URL; default: PUBLIC_URL, else the Site's domain)"
            ),
        )
        parser.add_argument(
            "--dashboard-origin",
            action="append",
            default=[],
            metavar="ORIGIN",
            help=gettext_lazy(
                "an origin allowed to show the pages in its iframe, e.g. https://dashboard.shop.example.com "
                "(repeat for several; default: any)"
            ),
        )

    def handle(self, *args, remove=False, url=None, dashboard_origin=(), **options) -> None:
        shop = get_shop()
        with shop.write_access():
            if remove:
                removed = shop.remove_dashboard()
                self.stdout.write(
                    _("removed the Cart Recovery app") if removed else _("no Cart Recovery app to remove")
                )
                return
            origins = tuple(_origin(value) for value in dashboard_origin)
            app_url = shop.link_url("dashboard")
            if url:
                path = urlsplit(url).path.rstrip("/").removesuffix("/graphql")  # the API URL is fine too
                app_url = _origin(url) + path + urlsplit(app_url).path
            installed = shop.install_dashboard(app_url, origins)
        done = (
            _("created the Cart Recovery app %(app)s at %(url)s")
            if installed.created
            else _("updated the Cart Recovery app %(app)s at %(url)s")
        )
        self.stdout.write(done % {"app": installed.app_id, "url": installed.app_url})
        for extension in installed.extensions:
            self.stdout.write("  " + _("extension: %(extension)s") % {"extension": extension})
        framed = ", ".join(origins) if origins else _("any Dashboard origin (--dashboard-origin limits it)")
        self.stdout.write("  " + _("framed by: %(origins)s") % {"origins": framed})


def _origin(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CommandError(
            _("'%(value)s' is not an http(s) URL such as https://dashboard.example.com") % {"value": value}
        )
    return f"{parts.scheme}://{parts.netloc}"
