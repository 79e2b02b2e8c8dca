"""The Saleor plugin: Dashboard configuration, checkout/order hooks and the HTTP endpoint.

A thin adapter: hooks hand plain values to :mod:`.series.activity` and never raise into the shopper's
mutation; everything else lives in the core. Erasure on customer deletion is not a hook here but a
``post_delete`` listener (:mod:`.saleor_host.erasure`): Saleor 3.23 never calls per-channel plugins'
``customer_deleted`` / ``account_deleted``.
"""

import logging

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy
from saleor.core.db.connection import allow_writer
from saleor.plugins.base_plugin import BasePlugin, ConfigurationTypeField
from saleor.plugins.error_codes import PluginErrorCode

from .exceptions import ConfigurationError
from .http import router
from .languages import speaking
from .saleor_host import erasure, version_check
from .saleor_host.shop import PLUGIN_ID, SaleorShop, order_ref
from .series.activity import record_activity, record_order, record_refund
from .settings import registry
from .settings.channel import RecoverySettings
from .settings.validation import validate_configuration

logger = logging.getLogger(__name__)

# Saleor imports this module in every process it starts (web, worker, beat): deleting a customer
# erases their carts from then on (see saleor_host.erasure for why not the plugin hooks).
erasure.connect()
# On a Saleor this release does not support, every process logs so and `migrate` warns
# (see saleor_host.version_check).
version_check.connect()

_TYPES = {
    registry.STRING: ConfigurationTypeField.STRING,
    registry.MULTILINE: ConfigurationTypeField.MULTILINE,
    registry.BOOLEAN: ConfigurationTypeField.BOOLEAN,
    registry.SECRET: ConfigurationTypeField.SECRET,
}
CONFIG_STRUCTURE = {
    field.name: {"type": _TYPES[field.kind], "label": field.label, "help_text": field.help_text}
    for field in registry.FIELDS
}


class CartRecoveryPlugin(BasePlugin):
    PLUGIN_ID = PLUGIN_ID
    PLUGIN_NAME = "Cart Recovery"
    # lazy: Saleor's API serializes it with str(), in the language active for the request
    PLUGIN_DESCRIPTION = gettext_lazy(
        "Sends a timed series of reminder emails for abandoned checkouts with the live cart and a "
        "link that restores it; stops at purchase, empty cart or unsubscribe."
    )
    CONFIGURATION_PER_CHANNEL = True
    DEFAULT_ACTIVE = False
    CONFIG_STRUCTURE = CONFIG_STRUCTURE
    DEFAULT_CONFIGURATION = [{"name": field.name, "value": field.default} for field in registry.FIELDS]

    def save_plugin_configuration(self, plugin_configuration, cleaned_data):  # type: ignore[override]
        """Saleor's save (a classmethod there; the manager calls it on this instance), with the
        validation messages in the language of the staff user saving — their ``language_code``,
        the best Saleor tells a plugin: ``pluginUpdate`` gives a plugin no request, Saleor
        activates no language for it and the Dashboard keeps its own language in the browser.
        Without a user (our Settings form, which already speaks the page's language; an app) the
        active language stays."""
        language = getattr(self.requestor, "language_code", None) if self.requestor else None
        if not language:
            return super().save_plugin_configuration(plugin_configuration, cleaned_data)
        with speaking(language):
            return super().save_plugin_configuration(plugin_configuration, cleaned_data)

    @classmethod
    def validate_plugin_configuration(cls, plugin_configuration, **kwargs):
        """Reject the save with one message per bad field (:func:`validate_configuration`, the check
        the Dashboard page and the API save through too); none of the submitted values is stored.

        (On a channel's very first save Saleor has already created the configuration row with
        our defaults, inactive, before it calls this.) Saleor turns the keys into the ``field``
        of ``pluginUpdate``'s errors (camel-cased, e.g. ``storefrontUrl``), so each message also
        starts with the field's Dashboard label.
        """
        channel = getattr(plugin_configuration, "channel", None)
        check = None
        if channel is not None:
            slug = channel.slug
            check = lambda refs: SaleorShop().unavailable_products(slug, refs)  # noqa: E731
        values = {
            item["name"]: str(item["value"])
            for item in plugin_configuration.configuration
            if item.get("value") is not None
        }
        try:
            active = bool(plugin_configuration.active)
            validate_configuration(values, active=active, unavailable_products=check)
        except ConfigurationError as exc:
            raise _validation_error(exc) from None

    def checkout_created(self, checkout, previous_value, webhooks=None):
        self._record_activity(checkout)
        return previous_value

    def checkout_updated(self, checkout, previous_value, webhooks=None):
        self._record_activity(checkout)
        return previous_value

    def order_created(self, order, previous_value, webhooks=None):
        if self.active:
            try:
                with allow_writer():
                    record_order(order_ref(order), channel_slug=self.channel.slug, at=timezone.now())
            except Exception:
                logger.exception("cart recovery: could not record order %s", order.pk)
        return previous_value

    def order_cancelled(self, order, previous_value, webhooks=None):
        self._record_refund(order)
        return previous_value

    def order_refunded(self, order, previous_value, webhooks=None):
        self._record_refund(order)
        return previous_value

    def order_fully_refunded(self, order, previous_value, webhooks=None):
        self._record_refund(order)
        return previous_value

    def webhook(self, request, path, previous_value):
        """Both plugin paths: ``/plugins/channel/<slug>/<id>/…`` (only while active in the channel)
        and ``/plugins/<id>/…``, which Saleor 3.23 routes to any instance of the plugin, active or
        not (``PluginsManager.webhook_endpoint_without_channel``) — there only the links that must always work
        answers, its channel taken from its token."""
        match = getattr(request, "resolver_match", None)
        per_channel = match is not None and "channel_slug" in match.kwargs
        return router.handle(request, self.channel.slug if per_channel else None, path)

    def _record_activity(self, checkout) -> None:
        """One upsert; checkouts without an email cost no query at all."""
        if not self.active:
            return
        try:
            email = checkout.email or (checkout.user.email if checkout.user_id else "")
            if not email:
                return
            settings = RecoverySettings.from_plugin_configuration(self.configuration)
            with allow_writer():
                record_activity(
                    checkout_token=str(checkout.token),
                    channel_slug=self.channel.slug,
                    email=email,
                    language_code=checkout.language_code,
                    at=timezone.now(),
                    settings=settings,
                )
        except Exception:
            logger.exception("cart recovery: could not record activity of checkout %s", checkout.pk)

    def _record_refund(self, order) -> None:
        """Copy the order's refunds and cancellation, as they are now, onto the carts it converted
        (absolute values: a repeated or out-of-order hook writes the same). Never raises."""
        if not self.active:
            return
        try:
            with allow_writer():
                record_refund(order_ref(order), at=timezone.now())
        except Exception:
            logger.exception("cart recovery: could not record refunds of order %s", order.pk)


def _validation_error(exc: ConfigurationError) -> ValidationError:
    return ValidationError(
        {
            field: ValidationError(
                message,
                code=(PluginErrorCode.REQUIRED if field in exc.required else PluginErrorCode.INVALID).value,
            )
            for field, message in exc.errors.items()
        }
    )
