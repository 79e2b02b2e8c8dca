from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError

from ...shop import get_shop


class Command(BaseCommand):
    help = (
        "Put Cart Recovery into the Saleor Dashboard: one app 'Cart Recovery' (MANAGE_CHECKOUTS) with a "
        "page under Customers and a 'Cart recovery' action on each customer's page, both served by the "
        "plugin's endpoint. Run it again to update; --remove takes it out."
    )

    def add_arguments(self, parser):
        parser.add_argument("--remove", action="store_true", help="remove the app and its extensions")
        parser.add_argument(
            "--url",
            help="the public URL of Saleor's API server, e.g. https://api.shop.example.com (or its "
            "GraphQL URL; default: PUBLIC_URL, else the Site's domain)",
        )
        parser.add_argument(
            "--dashboard-origin",
            action="append",
            default=[],
            metavar="ORIGIN",
            help="an origin allowed to show the pages in its iframe, e.g. https://dashboard.shop.example.com "
            "(repeat for several; default: any)",
        )

    def handle(self, *args, remove=False, url=None, dashboard_origin=(), **options) -> None:
        shop = get_shop()
        with shop.write_access():
            if remove:
                removed = shop.remove_dashboard()
                self.stdout.write(
                    "removed the Cart Recovery app" if removed else "no Cart Recovery app to remove"
                )
                return
            origins = tuple(_origin(value) for value in dashboard_origin)
            app_url = shop.link_url("dashboard")
            if url:
                path = urlsplit(url).path.rstrip("/").removesuffix("/graphql")  # the API URL is fine too
                app_url = _origin(url) + path + urlsplit(app_url).path
            installed = shop.install_dashboard(app_url, origins)
        self.stdout.write(
            f"{'created' if installed.created else 'updated'} the Cart Recovery app {installed.app_id} at "
            f"{installed.app_url}"
        )
        for extension in installed.extensions:
            self.stdout.write(f"  extension: {extension}")
        self.stdout.write(
            "  framed by: "
            + (", ".join(origins) if origins else "any Dashboard origin (--dashboard-origin limits it)")
        )


def _origin(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CommandError(f"'{value}' is not an http(s) URL such as https://dashboard.example.com")
    return f"{parts.scheme}://{parts.netloc}"
