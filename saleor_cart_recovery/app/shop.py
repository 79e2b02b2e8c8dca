"""The shop port implemented by the App host: Saleor's data over its GraphQL API with the app token
(:class:`~.saleor_api.SaleorApi`), the settings in the app's own table, links under ``APP_URL``,
callers checked with Saleor's keys (:mod:`.auth`).

Saleor refusing the app token on any call (:class:`AppTokenRevoked`) marks the installation
uninstalled before the error goes on: from then on every channel reads as inactive, so the core
records ``plugin_inactive`` for due steps instead of retrying against a Saleor that will not answer.
"""

import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from ..exceptions import ConfigurationError
from ..settings.channel import RecoverySettings, validate_for_activation
from ..settings.registry import DEFAULTS
from ..settings.validation import changes_to_save, validate_configuration
from ..shop import CartSnapshot, DashboardInstall, IssuedVoucher, OrderLookup, OrderRef, UpsellProduct
from . import auth, installation
from .client import AppTokenRevoked, SaleorUnavailable
from .manifest import EXTENSIONS, dashboard_url
from .models import ChannelSettings, Installation
from .saleor_api import SaleorApi

logger = logging.getLogger(__name__)


class AppShop:
    # Every order check is an HTTP request to Saleor (tens of milliseconds, most of a send's time):
    # one answer about the next messages of a batch stands for them this long (invariant 3); it is
    # what changed in Saleor since the batch's full read (find_orders_since) when it fits a page.
    order_answer_window = 0.25

    # -- settings: the app's own table ----------------------------------------------------------

    def channel_settings(self, channel_slug: str) -> RecoverySettings | None:
        """``None`` while the app is not installed (or was uninstalled) or inactive in the channel."""
        found = installation.stored()
        if found is None or not found.installed:
            return None
        row = ChannelSettings.objects.filter(channel_slug=channel_slug, active=True).first()
        if row is None:
            return None
        parsed = RecoverySettings.from_plugin_configuration(row.configuration)
        validate_for_activation(parsed)
        return parsed

    def stored_configuration(self, channel_slug: str) -> dict[str, str] | None:
        row = ChannelSettings.objects.filter(channel_slug=channel_slug).first()
        if row is None:
            return None
        return _values(row.configuration)

    def save_configuration(
        self, channel_slug: str, values: Mapping[str, str | None], active: bool | None
    ) -> bool:
        """The port's save (see :meth:`Shop.save_configuration`) into the app's table: the stored
        values with the changes merged in, the one check with the upsell products asked of Saleor,
        written in one transaction (a channel's first save creates its row, inactive unless
        ``active`` says otherwise); nothing is stored when a value is bad. A channel Saleor does not
        have is refused, as ``pluginUpdate`` refuses it.

        Saleor is asked (its channels, the products) before the transaction, never while our row
        is locked (invariant 4); the transaction checks the row as stored by then with those
        answers (products another save put there meanwhile, not asked about, are reported as not
        checked: save again)."""
        changes = changes_to_save(values)
        try:
            known = {channel.slug for channel in self._ask("channels")}
        except (installation.NotInstalled, AppTokenRevoked, SaleorUnavailable) as exc:
            message = _("Saleor could not be asked for its channels: %(problem)s") % {"problem": exc}
            raise ConfigurationError({"channel": message}) from None
        if channel_slug not in known:
            message = _("Cart Recovery cannot be configured in channel '%(channel)s': no such channel.") % {
                "channel": channel_slug
            }
            raise ConfigurationError({"channel": message})
        answers: dict[tuple[str, ...], dict[str, str]] = {}

        def ask_saleor(references: tuple[str, ...]) -> dict[str, str]:
            answers[references] = self.unavailable_products(channel_slug, references)
            return answers[references]

        merged, now_active = _merged(
            ChannelSettings.objects.filter(channel_slug=channel_slug).first(), changes, active
        )
        validate_configuration(merged, active=now_active, unavailable_products=ask_saleor)
        with transaction.atomic():
            row = ChannelSettings.objects.select_for_update().filter(channel_slug=channel_slug).first()
            merged, now_active = _merged(row, changes, active)
            validate_configuration(merged, active=now_active, unavailable_products=answers.__getitem__)
            ChannelSettings.objects.update_or_create(
                channel_slug=channel_slug,
                defaults={
                    "configuration": [{"name": name, "value": value} for name, value in merged.items()],
                    "active": now_active,
                },
            )
        return now_active

    # -- Saleor's data, over its API ------------------------------------------------------------

    def _installed(self) -> installation.Installed:
        found = installation.current()
        if found is None:
            raise installation.NotInstalled(
                _("Cart Recovery is not installed in Saleor at %(url)s") % {"url": settings.SALEOR_API_URL}
            )
        return found

    def _ask(self, method: str, /, *args, **kwargs):
        """``SaleorApi.<method>(...)``; a refused token uninstalls the app, then propagates."""
        found = self._installed()
        try:
            return getattr(SaleorApi(found.client), method)(*args, **kwargs)
        except AppTokenRevoked as exc:
            installation.token_refused(found, str(exc))
            raise

    def load_carts(self, checkout_tokens: Sequence[str]) -> dict[str, CartSnapshot]:
        if not checkout_tokens:  # no cart of an active channel: nothing to ask (nor any one to ask)
            return {}
        return self._ask("load_carts", checkout_tokens)

    def sample_cart(self, channel_slug: str, language_code: str) -> CartSnapshot:
        return self._ask("sample_cart", channel_slug, language_code)

    def find_orders(self, lookups: Sequence[OrderLookup]) -> dict[str, OrderRef]:
        """No order is known while the app is uninstalled (Saleor cannot be asked): every channel then
        reads as inactive, so the send path records due steps ``plugin_inactive`` at once instead of
        failing them, attempt after attempt, for a Saleor that will not answer."""
        if not lookups or installation.current() is None:
            return {}
        return self._ask("find_orders", lookups)

    def find_orders_since(
        self, lookups: Sequence[OrderLookup], read_at: datetime
    ) -> dict[str, OrderRef] | None:
        if not lookups or installation.current() is None:  # as find_orders
            return {}
        return self._ask("find_orders_since", lookups, read_at)

    def stock_levels(self, channel_slug: str, variant_ids: Iterable[str]) -> dict[str, int | None]:
        return self._ask("stock_levels", channel_slug, variant_ids)

    def upsell_products(
        self,
        channel_slug: str,
        carts: Sequence[Iterable[str]],
        configured: tuple[str, ...] | None,
        limit: int,
    ) -> list[tuple[UpsellProduct, ...]]:
        return self._ask("upsell_products", channel_slug, carts, configured, limit)

    def unavailable_products(self, channel_slug: str, refs: Sequence[str]) -> dict[str, str]:
        return self._ask("unavailable_products", channel_slug, refs)

    def issue_voucher(
        self,
        channel_slug: str,
        *,
        discount_type: str,
        value: Decimal,
        min_total: Decimal | None,
        expires_at: datetime,
        name: str,
    ) -> IssuedVoucher:
        return self._ask(
            "issue_voucher",
            channel_slug,
            discount_type=discount_type,
            value=value,
            min_total=min_total,
            expires_at=expires_at,
            name=name,
        )

    def delete_voucher(self, voucher: IssuedVoucher) -> None:
        self._ask("delete_voucher", voucher)

    def delete_expired_vouchers(self, now: datetime) -> int:
        return self._ask("delete_expired_vouchers", now)

    def customer_email(self, customer_id: str) -> str | None:
        return self._ask("customer_email", customer_id)

    # -- links, callers, the Dashboard ----------------------------------------------------------

    def endpoint_url(self, channel_slug: str, path: str) -> str:
        return f"{settings.APP_URL}/channel/{channel_slug}/{path}"

    def link_url(self, path: str) -> str:
        return f"{settings.APP_URL}/{path}"

    def write_access(self) -> AbstractContextManager:
        return contextlib.nullcontext()  # the app's own database: no reader/writer split

    def staff_can_view_reports(self, request, channel_slug: str) -> bool | None:
        return auth.staff_can_view_reports(request, channel_slug)

    def staff_can_change_settings(self, request, channel_slug: str) -> bool:
        return auth.staff_can_change_settings(request)

    def dashboard_viewer(self, token: str):
        return auth.dashboard_viewer(token)

    def install_dashboard(self, app_url: str, origins: Sequence[str] = ()) -> DashboardInstall:
        """Saleor created the extensions from the manifest at install; what is left to set here is
        which Dashboard origins may frame the pages (``app_url`` is the manifest's, whatever is
        passed)."""
        updated = Installation.objects.filter(
            saleor_api_url=settings.SALEOR_API_URL, uninstalled_at__isnull=True
        ).update(dashboard_origins=list(origins))
        found = installation.stored()
        if not updated or found is None:
            raise installation.NotInstalled(
                "install the app in the Saleor Dashboard first: Extensions → Installed → Add Extension → "
                f"Install from manifest → {settings.APP_URL}/api/manifest"
            )
        return DashboardInstall(
            app_id=found.app_id,
            created=False,
            app_url=dashboard_url(settings.APP_URL),
            extensions=tuple(
                f"{label} ({mount.lower()}, {target.lower()})" for _, label, mount, target, _ in EXTENSIONS
            ),
        )

    def dashboard_origins(self) -> tuple[str, ...]:
        found = installation.stored()
        return tuple(found.dashboard_origins) if found is not None else ()

    def remove_dashboard(self) -> bool:
        """The App's pages go with the App: Saleor removes them when the app is deleted in its
        Dashboard (Extensions → Installed), which then tells us (APP_DELETED)."""
        raise installation.NotInstalled(
            "the App's Dashboard pages are removed by deleting the app in the Saleor Dashboard "
            "(Extensions → Installed → Cart Recovery)"
        )


def _merged(
    row: ChannelSettings | None, changes: Mapping[str, str], active: bool | None
) -> tuple[dict[str, str], bool]:
    """The channel's whole configuration once ``changes`` are saved over ``row``, and whether it
    will be active."""
    stored = _values(row.configuration) if row is not None else {}
    return {**DEFAULTS, **stored, **changes}, (row is not None and row.active) if active is None else active


def _values(configuration: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    return {item["name"]: str(item.get("value") or "") for item in configuration}
