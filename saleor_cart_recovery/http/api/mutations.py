"""Changes: stop a cart's series, suppress or unsuppress an address, send a test email, save settings.

User errors come back in the payload's ``errors`` (Saleor's style) and then nothing changed.
"""

import logging

import graphene
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from graphql import GraphQLError

from ...email.preview import PreviewError, build_preview, send_test
from ...exceptions import CartRecoveryError, ConfigurationError
from ...models import CartStatus, Reason, RecoveryCart
from ...series.decisions import accepts_activity
from ...series.suppression import suppress, unsuppress
from ...settings.validation import SECRET_MASK
from ...shop import get_shop, settings_or_none
from .types import Cart, Error, Setting, channel_carts, stored_settings, valid_email, with_messages

logger = logging.getLogger(__name__)


class StopCart(graphene.Mutation):
    """Stop a live series now: no further reminder goes out (one already handed to the mail server
    cannot be called back), and new cart activity does not restart it. Stopped and finished carts
    are returned as they are; converted carts are left alone."""

    class Arguments:
        checkout_token = graphene.String(required=True)

    cart = graphene.Field(Cart)
    errors = graphene.List(graphene.NonNull(Error), required=True)

    @staticmethod
    def mutate(root, info, checkout_token):
        channel = info.context.channel_slug
        now = timezone.now()
        with get_shop().write_access(), transaction.atomic():
            cart = (
                RecoveryCart.objects.select_for_update()
                .filter(channel_slug=channel, checkout_token=checkout_token)
                .first()
            )
            if cart is None:
                message = _("No cart with this checkout token in this channel.")
                return StopCart(cart=None, errors=[_error("checkoutToken", message)])
            if cart.status == CartStatus.CONVERTED:
                message = _("The cart was converted (order %(number)s); it is left as it is.") % {
                    "number": cart.order_number
                }
                return StopCart(cart=None, errors=[_error("checkoutToken", message)])
            if accepts_activity(cart.status, cart.stop_reason):  # a live series
                cart.status, cart.stop_reason, cart.next_due_at, cart.updated_at = (
                    CartStatus.STOPPED,
                    Reason.MANUAL,
                    None,
                    now,
                )
                cart.save(update_fields=["status", "stop_reason", "next_due_at", "updated_at"])
                logger.info("cart %s stopped through the API", cart.checkout_token)
        cart = channel_carts(info).filter(pk=cart.pk).prefetch_related(with_messages()).get()
        return StopCart(cart=cart, errors=[])


class _AddressMutation(graphene.Mutation):
    """A change to one address's suppression: the address is validated first, and a bad one is
    answered in ``errors`` with nothing changed."""

    class Meta:
        abstract = True

    class Arguments:
        email = graphene.String(required=True)

    email = graphene.String(description="The address as stored (lowercased).")
    suppressed = graphene.Boolean()
    errors = graphene.List(graphene.NonNull(Error), required=True)

    @classmethod
    def mutate(cls, root, info, email):
        try:
            address = valid_email(email)
        except ValueError as exc:
            return cls(errors=[_error("email", str(exc))])
        return cls.change(info.context.channel_slug, address)

    @classmethod
    def change(cls, channel_slug: str, address: str):
        raise NotImplementedError


class Suppress(_AddressMutation):
    """Send the address no more reminders in this channel; its live series stop now (as when the
    shopper uses the unsubscribe link)."""

    stopped_carts = graphene.Int(description="Live series stopped by this call.")

    @classmethod
    def change(cls, channel_slug, address):
        stopped = suppress(channel_slug, address, source="api")
        return cls(email=address, suppressed=True, stopped_carts=stopped, errors=[])


class Unsuppress(_AddressMutation):
    """Let the address get reminders again for carts it starts from now on; series stopped by the
    suppression stay stopped."""

    @classmethod
    def change(cls, channel_slug, address):
        if not unsuppress(channel_slug, address):
            errors = [_error("email", _("The address is not suppressed."))]
            return cls(email=address, suppressed=False, errors=errors)
        return cls(email=address, suppressed=False, errors=[])


class SendTest(graphene.Mutation):
    """Send a step's email to any address now, through the channel's mail server: the subject starts
    with "[Test] ", a coupon step shows a sample code (no voucher is issued), links are not tracked
    and nothing is recorded on any cart."""

    class Arguments:
        step = graphene.Int(required=True)
        email = graphene.String(required=True)
        checkout_token = graphene.String(description="A checkout of this channel; a sample cart without it.")
        language = graphene.String()
        variant = graphene.Int(default_value=0)

    sent = graphene.Boolean(required=True)
    subject = graphene.String()
    errors = graphene.List(graphene.NonNull(Error), required=True)

    @staticmethod
    def mutate(root, info, step, email, checkout_token=None, language=None, variant=0):
        try:
            address = valid_email(email)
        except ValueError as exc:
            return SendTest(sent=False, errors=[_error("email", str(exc))])
        channel = info.context.channel_slug
        settings = settings_or_none(channel)
        if settings is None:
            message = _("The channel's settings cannot be used right now; check them in the Dashboard.")
            return SendTest(sent=False, errors=[_error(None, message)])
        try:
            preview = build_preview(
                get_shop(),
                settings,
                channel,
                step=step,
                checkout_token=checkout_token,
                language=language,
                variant=variant,
                to=address,
                test=True,
            )
        except PreviewError as exc:
            return SendTest(sent=False, errors=[_error(exc.field, exc.message)])
        try:
            send_test(settings, preview)
        except CartRecoveryError as exc:  # the mail server's answer, for the owner to act on
            logger.warning("cart recovery: test send to %s failed: %s", address, exc)
            problem = _("Not sent: %(problem)s") % {"problem": exc}
            return SendTest(sent=False, subject=preview.subject, errors=[_error(None, problem)])
        logger.info("cart recovery: test email of step %s sent to %s", step, address)
        return SendTest(sent=True, subject=preview.subject, errors=[])


class SettingInput(graphene.InputObjectType):
    name = graphene.String(required=True, description="A setting's name, e.g. `schedule`.")
    value = graphene.String(
        description="The new value, as typed in the Dashboard. Null: back to the default (for a "
        f"secret: the stored value is removed). A secret given empty or as `{SECRET_MASK}` keeps its "
        "stored value."
    )


class UpdateSettings(graphene.Mutation):
    """Save settings of this channel as the Dashboard's Settings tab and ``pluginUpdate`` do (the
    same checks and messages): only the named settings change; a bad or unknown one is named in
    ``errors`` — every one of them — and then nothing is stored. Needs MANAGE_PLUGINS."""

    class Arguments:
        active = graphene.Boolean(description="Turn reminders on or off in this channel; omitted: unchanged.")
        input = graphene.List(graphene.NonNull(SettingInput), description="The settings to change.")

    active = graphene.Boolean(description="Whether reminders go out in this channel now.")
    settings = graphene.List(
        graphene.NonNull(Setting), required=True, description="Every setting as stored after the call."
    )
    errors = graphene.List(graphene.NonNull(Error), required=True)

    @staticmethod
    def mutate(root, info, active=None, input=None):
        channel, shop = info.context.channel_slug, get_shop()
        if not shop.staff_can_change_settings(info.context.request, channel):
            raise GraphQLError(_("updateSettings needs the MANAGE_PLUGINS permission."))
        changes: dict[str, str | None] = {}
        twice = []
        for item in input or ():
            if item.name in changes:
                twice.append(
                    _error(item.name, _("'%(name)s' is given more than once.") % {"name": item.name})
                )
            changes[item.name] = item.value
        if twice:
            return UpdateSettings(settings=stored_settings(channel), errors=twice)
        try:
            now_active = shop.save_configuration(channel, changes, active)
        except ConfigurationError as exc:
            errors = [_error(name, message) for name, message in exc.errors.items()]
            return UpdateSettings(settings=stored_settings(channel), errors=errors)
        logger.info("cart recovery: settings of %s changed through the API: %s", channel, sorted(changes))
        return UpdateSettings(active=now_active, settings=stored_settings(channel), errors=[])


def _error(field: str | None, message: str) -> Error:
    return Error(field=field, message=message)


class Mutation(graphene.ObjectType):
    stop_cart = StopCart.Field()
    suppress = Suppress.Field()
    unsuppress = Unsuppress.Field()
    send_test = SendTest.Field()
    update_settings = UpdateSettings.Field()
