"""The Saleor plugin: Dashboard configuration, checkout/order hooks and the HTTP endpoint.

A thin adapter: hooks hand plain values to :mod:`activity` and never raise into the shopper's
mutation; everything else lives in the core.
"""

import logging

from django.core.exceptions import ValidationError
from django.utils import timezone
from saleor.core.db.connection import allow_writer
from saleor.plugins.base_plugin import BasePlugin, ConfigurationTypeField
from saleor.plugins.error_codes import PluginErrorCode

from . import endpoints
from .activity import record_activity, record_order
from .config import DEFAULT_VALUES, RecoverySettings, validate_for_activation
from .exceptions import ConfigurationError
from .saleor.shop import PLUGIN_ID, order_ref

logger = logging.getLogger(__name__)

_STRING = ConfigurationTypeField.STRING
CONFIG_STRUCTURE = {
    "schedule": {
        "type": _STRING,
        "label": "Reminder schedule",
        "help_text": "Quiet time after the last cart activity before each reminder, one per step, "
        "comma separated. Units s, m, h, d. Example: 1h, 1d, 3d",
    },
    "cutoff": {
        "type": _STRING,
        "label": "Abandonment cutoff",
        "help_text": "Minimum quiet time before a cart counts as abandoned; no reminder goes out "
        "sooner. Example: 30m",
    },
    "subjects": {
        "type": ConfigurationTypeField.MULTILINE,
        "label": "Subject lines",
        "help_text": "One per line as 'step: subject'. Several lines for one step are A/B variants. "
        "Prefix a language to localize: '1 [tr]: Sepetinizde ürün var'. Every step needs at least "
        "one line without a language.",
    },
    "storefront_url": {
        "type": _STRING,
        "label": "Cart recovery link",
        "help_text": "Storefront page that restores the cart; {token} is replaced with the checkout "
        "token. Example: https://shop.example.com/cart/{token}",
    },
    "from_email": {
        "type": _STRING,
        "label": "Sender",
        "help_text": "From address, e.g. 'Shop <shop@example.com>'. Empty: DEFAULT_FROM_EMAIL.",
    },
    "smtp_url": {
        "type": ConfigurationTypeField.SECRET,
        "label": "SMTP server",
        "help_text": "smtp://user:password@host:587?tls=true or smtps://...:465. Empty: Saleor's "
        "email settings (EMAIL_URL).",
    },
    "holdout_percent": {
        "type": _STRING,
        "label": "Holdout share",
        "help_text": "Percent of new carts (0-50) that get no reminder at all but are tracked, so "
        "recovered revenue can be compared with what would have come anyway. Example: 10",
    },
}


class CartRecoveryPlugin(BasePlugin):
    PLUGIN_ID = PLUGIN_ID
    PLUGIN_NAME = "Cart Recovery"
    PLUGIN_DESCRIPTION = (
        "Sends a timed series of reminder emails for abandoned checkouts with the live cart and a "
        "link that restores it; stops at purchase, empty cart or unsubscribe."
    )
    CONFIGURATION_PER_CHANNEL = True
    DEFAULT_ACTIVE = False
    CONFIG_STRUCTURE = CONFIG_STRUCTURE
    DEFAULT_CONFIGURATION = [{"name": name, "value": value} for name, value in DEFAULT_VALUES.items()]

    @classmethod
    def validate_plugin_configuration(cls, plugin_configuration, **kwargs):
        """Reject the save with one message per bad field; none of the submitted values is stored.

        (On a channel's very first save Saleor has already created the configuration row with
        our defaults, inactive, before it calls this.) Saleor turns the keys into the ``field``
        of ``pluginUpdate``'s errors (camel-cased, e.g. ``storefrontUrl``), so each message also
        starts with the field's Dashboard label.
        """
        try:
            settings = RecoverySettings.from_plugin_configuration(plugin_configuration.configuration)
        except ConfigurationError as exc:
            raise _validation_error(exc, PluginErrorCode.INVALID) from None
        if plugin_configuration.active:
            try:
                validate_for_activation(settings)
            except ConfigurationError as exc:
                raise _validation_error(exc, PluginErrorCode.REQUIRED) from None

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

    def webhook(self, request, path, previous_value):
        return endpoints.handle(request, self.channel.slug, path)

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


def _validation_error(exc: ConfigurationError, code: PluginErrorCode) -> ValidationError:
    return ValidationError(
        {
            field: ValidationError(f"{CONFIG_STRUCTURE[field]['label']}: {message}", code=code.value)
            for field, message in exc.errors.items()
        }
    )
