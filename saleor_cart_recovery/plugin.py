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
from .saleor.offers import unavailable_products
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
    "coupon_step": {
        "type": _STRING,
        "label": "Coupon step",
        "help_text": "Step whose email carries a single-use coupon made for that cart. Empty: no "
        "coupon. Example: 3",
    },
    "coupon_type": {
        "type": _STRING,
        "label": "Coupon type",
        "help_text": "percentage or fixed (an amount in the channel's currency). Example: percentage",
    },
    "coupon_value": {
        "type": _STRING,
        "label": "Coupon value",
        "help_text": "Percent off, or amount off in the channel's currency. Example: 10",
    },
    "coupon_valid_for": {
        "type": _STRING,
        "label": "Coupon validity",
        "help_text": "How long the code works after the email is sent (1h to 30d). Example: 48h",
    },
    "coupon_min_total": {
        "type": _STRING,
        "label": "Coupon minimum spend",
        "help_text": "Minimum order subtotal in the channel's currency. Empty: none. Example: 50",
    },
    "upsell_products": {
        "type": ConfigurationTypeField.MULTILINE,
        "label": "Upsell products",
        "help_text": "Products shown under the cart in urgency steps: product IDs, global IDs or "
        "slugs, or 'auto' for products from the cart's categories and collections. Example: auto",
    },
    "upsell_count": {
        "type": _STRING,
        "label": "Upsell count",
        "help_text": "How many upsell products at most (1-6). Example: 3",
    },
    "upsell_product_url": {
        "type": _STRING,
        "label": "Product link",
        "help_text": "Storefront product page with {slug}. Empty: upsell products link to the cart. "
        "Example: https://shop.example.com/products/{slug}",
    },
    "urgency_stock_threshold": {
        "type": _STRING,
        "label": "Low-stock threshold",
        "help_text": "Say 'only N left' when a cart item's available stock in the channel is at or "
        "below this (0: never). Example: 3",
    },
    "step_content": {
        "type": ConfigurationTypeField.MULTILINE,
        "label": "Content per step",
        "help_text": "One line per step as 'step: reminder|help|urgency|discount'. Empty lines use "
        "the defaults: step 1 reminder, the coupon step discount, other steps urgency. Example: 2: help",
    },
    "cadences": {
        "type": _STRING,
        "label": "Cadence test",
        "help_text": "Alternative schedules to test against each other, each with a label and one delay "
        "per step, separated by '|'. Each cart gets one, by a stable hash. Empty: no cadence test. "
        "Example: A: 1h, 1d, 3d | B: 12h, 2d, 8d",
    },
    "attribution_window": {
        "type": _STRING,
        "label": "Attribution window",
        "help_text": "An order this soon after the last reminder counts as recovered by it in the "
        "report. Example: 7d",
    },
    "auto_winner": {
        "type": ConfigurationTypeField.BOOLEAN,
        "label": "Automatic winner",
        "help_text": "Send every new cart the winning subject / cadence once it is best with 95 % "
        "probability and every variant reached the minimum recipients.",
    },
    "winner_min_recipients": {
        "type": _STRING,
        "label": "Minimum recipients per variant",
        "help_text": "No verdict (in the report or for the automatic winner) before each variant has "
        "this many recipients. Example: 200",
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
        channel = getattr(plugin_configuration, "channel", None)
        if settings.offers.upsell_products and channel is not None:
            problems = unavailable_products(channel.slug, settings.offers.upsell_products)
            if problems:
                message = "; ".join(f"'{ref}': {why}" for ref, why in problems.items())
                error = ConfigurationError({"upsell_products": message})
                raise _validation_error(error, PluginErrorCode.INVALID)
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
