"""Every Dashboard field, declared once: name, label, help, type, default, example and parser.

From :data:`FIELDS` come Saleor's ``CONFIG_STRUCTURE`` and ``DEFAULT_CONFIGURATION`` (in
``plugin.py``), the parsing and validation of a channel's settings (:mod:`.channel`) and the
settings table in docs/settings.md (:func:`settings_table`; a test fails when the two differ). A new
setting is one entry here plus the attribute it fills in :mod:`.channel`.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from . import email_copy, formats, sending_rules
from .parsers import parse_bool, parse_decimal, parse_duration, parse_int, parse_sender, parse_url_template

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

STRING, MULTILINE, BOOLEAN, SECRET = "string", "multiline", "boolean", "secret"

DEFAULT_SUBJECTS = "\n".join(
    [
        "1: Forgot something?",
        "2: Your cart is still waiting for you",
        "3: One last reminder about your cart",
        "1 [tr]: Bir şey mi unuttunuz?",
        "2 [tr]: Sepetiniz sizi bekliyor",
        "3 [tr]: Sepetiniz için son hatırlatma",
    ]
)


@dataclass(frozen=True)
class Field:
    name: str  # the stored configuration name: part of the stable contract, never renamed
    label: "str | _StrPromise"  # Dashboard label (translated); every error message starts with it
    kind: str  # STRING, MULTILINE, BOOLEAN or SECRET (how the Dashboard shows it)
    default: str  # as Saleor stores it: a string
    parse: Callable[[str], Any]  # text → typed value; ValueError with a message otherwise
    help: "str | _StrPromise"  # Dashboard help text, translated (the example is added to it)
    example: str = ""  # lines joined by "\n" for multiline fields
    doc: str = ""  # docs/settings.md's longer explanation; empty: the help text

    @property
    def help_text(self) -> "str | _StrPromise":
        """In the language active when it is read (Saleor reads it per request)."""
        if not self.example:
            return self.help
        return format_lazy(
            _("{help} Example: {example}"), help=self.help, example=" / ".join(self.example.splitlines())
        )


def _duration(
    minimum: timedelta, maximum: timedelta, why: "str | _StrPromise" = ""
) -> Callable[[str], timedelta]:
    return lambda text: parse_duration(text, minimum=minimum, maximum=maximum, why=why)


def _optional_amount(text: str) -> Decimal | None:
    if not text.strip():
        return None
    try:
        amount = parse_decimal(
            text, low=Decimal(0), high=Decimal(1_000_000), what=_("an amount"), example="49.99"
        )
    except ValueError as exc:
        raise ValueError(gettext("%(problem)s, or leave empty") % {"problem": exc}) from None
    return amount or None


def _coupon_value(text: str) -> Decimal:
    value = parse_decimal(
        text, low=Decimal(-1_000_000), high=Decimal(1_000_000), what=_("a number"), example="7.5"
    )
    if value <= 0:
        raise ValueError(gettext("must be more than 0"))
    return value


FIELDS: tuple[Field, ...] = (
    Field(
        "schedule",
        _("Reminder schedule"),
        STRING,
        "1h, 1d, 3d",
        formats.parse_schedule,
        format_lazy(
            _(
                "Quiet time after the last cart activity before each reminder, one per step, comma "
                "separated (at most {max_steps}, growing, 10s to 90d). Units s, m, h, d."
            ),
            max_steps=formats.MAX_STEPS,
        ),
        example="1h, 1d, 3d",
    ),
    Field(
        "cutoff",
        _("Abandonment cutoff"),
        STRING,
        "30m",
        _duration(timedelta(seconds=10), timedelta(days=30)),
        _("Minimum quiet time before a cart counts as abandoned (10s to 30d); no reminder goes out sooner."),
        example="30m",
    ),
    Field(
        "subjects",
        _("Subject lines"),
        MULTILINE,
        DEFAULT_SUBJECTS,
        formats.parse_subjects,
        _(
            "One per line as 'step: subject' (at most 200 characters). Several lines for one step are A/B "
            "variants A, B, ... (each cart gets one, by a stable hash of its token). 'step [lang]: subject' "
            "localizes a line: the n-th line of a step in a language is variant n there too, so a language "
            "needs as many lines for a step as the lines without a language. Every step needs at least "
            "one line without a language."
        ),
        example="1: Forgot something?\n1: Still thinking it over?\n1 [tr]: Bir şey mi unuttunuz?\n"
        "1 [tr]: Hâlâ düşünüyor musunuz?",
    ),
    Field(
        "storefront_url",
        _("Cart recovery link"),
        STRING,
        "",
        lambda text: parse_url_template(
            text, {"token": _("the checkout token"), "checkout_id": _("the checkout's GraphQL ID")}
        ),
        _(
            "Storefront page that restores the cart; {token} is replaced with the checkout token, "
            "{checkout_id} with the checkout's GraphQL ID (what Saleor's reference storefront reads from "
            "/checkout?checkout=). Required to activate."
        ),
        example="https://shop.example.com/checkout?checkout={checkout_id}",
    ),
    Field(
        "from_email",
        _("Sender"),
        STRING,
        "",
        parse_sender,
        _("The From of every reminder. Empty: Saleor's DEFAULT_FROM_EMAIL."),
        example="Shop <shop@example.com>",
    ),
    Field(
        "smtp_url",
        _("SMTP server"),
        SECRET,
        "",
        formats.parse_smtp_url,
        _(
            "Where reminders are handed over: smtp://, with ?tls=true for STARTTLS, or smtps:// for TLS. "
            "Empty: Saleor's email settings (EMAIL_URL)."
        ),
        example="smtp://user:pass@mail.example.com:587?tls=true",
    ),
    Field(
        "esp_provider",
        _("Mail provider"),
        STRING,
        "",
        formats.parse_esp_provider,
        format_lazy(
            _(
                "The provider whose event webhooks report on this channel's mail: {providers}. Its events "
                "are accepted only on its own webhook path. Empty: provider events are refused."
            ),
            providers=", ".join(formats.ESP_PROVIDERS),
        ),
        example="postmark",
        doc="The mail provider whose event webhooks report on this channel's reminders, as the webhook path "
        "names it: " + ", ".join(f"`{name}`" for name in formats.ESP_PROVIDERS) + ". The channel's "
        "secret (and signing key) are accepted only on that provider's path, so a signing key cannot "
        "be bypassed by posting to a provider that does not sign. Required with a webhook secret. "
        "Empty: events are refused for this channel.",
    ),
    Field(
        "esp_webhook_secret",
        _("Provider webhook secret"),
        SECRET,
        "",
        formats.parse_webhook_secret,
        _(
            "user:password your mail provider's event webhook sends as basic auth (see "
            "docs/deliverability.md). Empty: provider events are refused for this channel."
        ),
        example="events:0f3c9a7d2b51e8a4",
        doc="`user:password` that your mail provider's event webhook (bounces, complaints, unsubscribes, "
        "deliveries) sends as HTTP basic auth: put it into the webhook URL, e.g. "
        "`https://events:0f3c…@saleor.example.com/plugins/saleor_cart_recovery/esp/postmark/tracking/`. "
        "The password has at least 16 characters. Channels mailed through the same provider account "
        "use the same secret. Empty: events are refused for this channel. See "
        "[deliverability.md](deliverability.md).",
    ),
    Field(
        "esp_signing_key",
        _("Provider webhook signing key"),
        SECRET,
        "",
        formats.parse_signing_key,
        _(
            "The key your provider signs its webhooks with, when it signs them: Mailgun's webhook signing "
            "key, MailerSend's signing secret, SendGrid's verification key, Mailtrap's webhook secret."
        ),
        example="key-3ax6xnjp29jd6fds4gc373sgvjxteol0",
        doc="The key your mail provider signs its event webhooks with; each request's signature is then "
        "checked as well as the secret above: Mailgun's HTTP webhook signing key and MailerSend's "
        "signing secret (both required for those providers), SendGrid's signed event webhook "
        "verification key and Mailtrap's webhook secret (checked when given).",
    ),
    Field(
        "holdout_percent",
        _("Holdout share"),
        STRING,
        "0",
        lambda text: parse_decimal(
            text or "0", low=Decimal(0), high=Decimal(50), what=_("a number"), example="12.5"
        ),
        _(
            "Percent of shoppers (0-50, two decimals) whose carts get no reminder at all but are tracked, so "
            "recovered revenue can be compared with what would have come anyway."
        ),
        example="10",
        doc="Share of shoppers (0–50 %, two decimals) whose carts get **no** reminder but are tracked "
        "like the others: the control group for measuring what the series really recovers. Membership "
        "is per shopper — a keyed hash (Django's `SECRET_KEY`) of the channel and the address — so all "
        "of a shopper's carts are in the same group, across experiment versions; changing the share "
        "moves only the shoppers between the old and the new threshold. It is recorded on each cart at "
        "its first activity and never changes. Each step a held-out cart would have received is "
        "recorded as `skipped`/`holdout`; its orders are recorded like any other.",
    ),
    Field(
        "cadences",
        _("Cadence test"),
        STRING,
        "",
        formats.parse_cadences,
        _(
            "Alternative schedules tested against each other: 'label: delays' per cadence, separated by '|' "
            "or new lines; at least two, each with one delay per step (growing). Each cart gets one, by a "
            "stable hash. Empty: every cart follows the schedule."
        ),
        example="A: 1h, 1d, 3d | B: 12h, 2d, 8d",
        doc="Alternative schedules tested against each other: `label: delays` per cadence, separated by "
        "`|` or new lines; at least two (at most 5), each with one delay per step (growing), labels of "
        "letters, digits, `-`, `_`. A cart gets its cadence at its first activity, by a stable hash of "
        "token and experiment version (or the automatic winner's, once decided), and keeps it. Empty: "
        "every cart follows `schedule`.",
    ),
    Field(
        "attribution_window",
        _("Attribution window"),
        STRING,
        "7d",
        _duration(timedelta(hours=1), timedelta(days=90), _("For example 7d.")),
        _(
            "An order this soon after the last reminder sent before it counts as recovered after a reminder "
            "(and is attributed to that step and subject) in the report. 1h to 90d."
        ),
        example="7d",
    ),
    Field(
        "auto_winner",
        _("Automatic winner"),
        BOOLEAN,
        "false",
        parse_bool,
        _(
            # xgettext:no-python-format
            "Give every new cart the winning subject / cadence once a sequential test valid at every look "
            "(5 % error) proves it best and every variant has the minimum carts. Checked every 10 minutes."
        ),
        example="true",
    ),
    Field(
        "winner_min_recipients",
        _("Minimum carts per variant"),
        STRING,
        "200",
        lambda text: parse_int(text or "200", low=10, high=1_000_000, unit=_("recipients per variant")),
        _(
            "Carts each variant (and shoppers each holdout group) needs before any verdict: the report "
            "shows 'not enough data' below it and the automatic winner waits. 10 to 1000000."
        ),
        example="200",
    ),
    Field(
        "coupon_step",
        _("Coupon step"),
        STRING,
        "",  # no coupon until the owner picks a step: coupons cost margin
        formats.parse_coupon_step,
        _("Step whose email carries a single-use coupon made for that one cart. Empty: no coupon."),
        example="3",
    ),
    Field(
        "coupon_type",
        _("Coupon type"),
        STRING,
        formats.PERCENTAGE,
        formats.parse_coupon_type,
        _("percentage or fixed (an amount in the channel's currency)."),
        example="percentage",
    ),
    Field(
        "coupon_value",
        _("Coupon value"),
        STRING,
        "10",
        _coupon_value,
        _("Percent off (at most 100) or amount off in the channel's currency, two decimals at most."),
        example="10",
    ),
    Field(
        "coupon_valid_for",
        _("Coupon validity"),
        STRING,
        "48h",
        _duration(
            timedelta(hours=1), timedelta(days=30), _("A short expiry is what keeps a leaked code cheap.")
        ),
        _("How long the code works after the email is sent, 1h to 30d."),
        example="48h",
    ),
    Field(
        "coupon_min_total",
        _("Coupon minimum spend"),
        STRING,
        "",
        _optional_amount,
        _("Minimum order subtotal for the code, in the channel's currency. Empty: none."),
        example="50",
    ),
    Field(
        "upsell_products",
        _("Upsell products"),
        MULTILINE,
        "",
        formats.parse_upsell_products,
        _(
            "Products shown under the cart in urgency steps: product IDs, global IDs or slugs (at most 20), "
            "or 'auto' for products from the cart's categories and collections. Empty: no upsell."
        ),
        example="auto",
        doc="Products shown under the cart in *urgency* steps: product IDs, Saleor global IDs or slugs "
        "(at most 20, each checked on save: it must exist and be published and available for purchase "
        "in the channel), or `auto`: products sharing a category or collection with the cart's "
        "products. Only products published, purchasable, priced and in stock in the channel, and not "
        "in the cart, are shown; a configured product that later disappears is skipped with a logged "
        "reason. Empty: no upsell.",
    ),
    Field(
        "upsell_count",
        _("Upsell count"),
        STRING,
        "3",
        lambda text: parse_int(text, low=1, high=6, unit=_("products to show")),
        _("How many upsell products at most (1-6)."),
        example="3",
    ),
    Field(
        "upsell_product_url",
        _("Product link"),
        STRING,
        "",
        lambda text: parse_url_template(text, {"slug": _("the product's slug")}),
        _("Storefront product page with {slug}. Empty: upsell products link to the cart."),
        example="https://shop.example.com/products/{slug}",
    ),
    Field(
        "urgency_stock_threshold",
        _("Low-stock threshold"),
        STRING,
        "3",
        lambda text: parse_int(text, low=0, high=1000, unit=_("pieces; 0 turns stock urgency off")),
        _(
            "Say 'only N left' when a cart item's available stock in the channel is at or below this "
            "(0: never; at most 1000)."
        ),
        example="3",
        doc='In *urgency* steps, "Only N left: product" appears for a cart item whose available stock '
        "(stock minus allocations in the channel's warehouses, counted as Saleor's `quantityAvailable` "
        "counts it) is between 1 and this (at most 1000). `0`: never.",
    ),
    Field(
        "step_content",
        _("Content per step"),
        MULTILINE,
        "",
        formats.parse_step_content,
        _(
            "One line per step as 'step: reminder|help|urgency|discount' (discount only on the coupon "
            "step). Unlisted steps: step 1 reminder, the coupon step discount, every other step urgency."
        ),
        example="1: reminder\n2: help\n3: discount",
        doc="What each step says, one line per step as `step: type` with `reminder`, `help` (an offer to "
        "answer questions), `urgency` (true low-stock and price-drop lines plus upsell products) or "
        "`discount` (the coupon; only on `coupon_step`). Unlisted steps: step 1 `reminder`, the coupon "
        "step `discount`, every other step `urgency`.",
    ),
    Field(
        "audience",
        _("Audience"),
        STRING,
        sending_rules.ALL,
        sending_rules.parse_audience,
        _(
            "all: every abandoned checkout with an address; consented: only shoppers whose consent is in "
            "the metadata key below (read at each send, checkout first, then the customer account)."
        ),
        example="consented",
        doc="`all`: every abandoned checkout with an address gets the series. `consented`: only shoppers "
        "who agreed to marketing email (GDPR/ePrivacy, Turkey's 6563 and İYS rules). Consent is read "
        "right before each reminder — the storefront may set it after the checkout was created — from "
        "the checkout's metadata (public, then private), else the customer account's; the first place "
        "that has the key decides, and `true`, `yes` or `1` means yes. A step without consent is "
        "recorded `skipped`/`no_consent` and the series goes on (a later step goes out once consent "
        "is there).",
    ),
    Field(
        "consent_metadata_key",
        _("Consent metadata key"),
        STRING,
        "marketing_consent",
        sending_rules.parse_metadata_key,
        _(
            "The metadata key that holds the shopper's consent (true, yes or 1) on the checkout or the "
            "customer account."
        ),
        example="marketing_consent",
    ),
    Field(
        "time_zone",
        _("Time zone"),
        STRING,
        "UTC",
        sending_rules.parse_time_zone,
        _("IANA time zone for quiet hours when the shopper's own zone is not known."),
        example="Europe/Istanbul",
        doc="IANA time zone for quiet hours when the shopper's own is not known. The shopper's zone is "
        "the checkout metadata key `time_zone` (an IANA name the storefront can take from the browser: "
        "`Intl.DateTimeFormat().resolvedOptions().timeZone`), else the zone of the shipping (then "
        "billing) address's country when that country keeps one time (Turkey, France, Germany — not "
        "the United States or Spain), else this setting.",
    ),
    Field(
        "quiet_hours",
        _("Quiet hours"),
        STRING,
        "",
        sending_rules.parse_quiet_hours,
        _(
            "Daily window(s) HH:MM-HH:MM in the shopper's time zone when no reminder goes out; a step due "
            "inside one goes out when it ends. Empty: any time."
        ),
        example="21:00-08:00",
        doc="Daily window(s) `HH:MM-HH:MM` (several separated by commas, not overlapping, at least 4 "
        "hours a day left open) in the shopper's own time zone (see `time_zone`) when no reminder goes "
        "out. A step due inside a window is postponed to its end — never skipped — and recorded "
        "`scheduled`/`quiet_hours` meanwhile; the next step keeps its configured gap after it, so "
        "postponed steps never bunch. Daylight-saving changes follow the zone's rules. Empty: any time.",
    ),
    Field(
        "frequency_cap",
        _("Frequency cap"),
        STRING,
        "",
        sending_rules.parse_frequency_cap,
        _(
            "At most N reminders per address per period across all its carts in this channel, e.g. "
            "'1 per 24h'; a step over the cap is skipped (frequency_cap). Empty: no cap."
        ),
        example="1 per 24h",
        doc="At most N reminders (1–100) to one address within any period (1h–30d) in this channel, "
        "counted over all its carts, e.g. `1 per 24h`. A step that would go over is **skipped** with "
        "reason `frequency_cap` (and the series goes on with its next step) rather than postponed: a "
        "postponed reminder about an old cart would pile up behind the new one. Enforced under a lock "
        "per address, so two workers cannot both send the last allowed reminder. Whatever the cap, a "
        "coupon is issued at most once per address per `coupon_valid_for`: a shopper cannot collect "
        "codes by opening many carts (the later step goes out without one).",
    ),
    Field(
        "min_cart_total",
        _("Minimum cart total"),
        STRING,
        "",
        _optional_amount,
        _("Carts whose subtotal (channel currency) is below this get no reminder. Empty: any cart."),
        example="25",
        doc="Carts whose subtotal (the lines' total, channel currency) is below this get no reminder: "
        "checked right before each step; such a cart is stopped with reason `below_min_total` and "
        "picks the series up again if the shopper adds to it. Empty: any cart.",
    ),
    Field(
        "email_copy",
        _("Email copy"),
        MULTILINE,
        "",
        lambda text: email_copy.parse_email_copy(text, max_steps=formats.MAX_STEPS),
        _(
            "Your own words per step: 'step [lang] field: text' with field heading, intro, button or "
            "footer; {shop_name} and {first_name} are filled in. Unlisted: the built-in copy."
        ),
        example="1 heading: Your basket misses you\n1 [tr] heading: Sepetiniz sizi özledi\n"
        "3 intro: Hi {first_name}, this is the last note from {shop_name} about this cart.",
        doc="Your own words, one line per step, language and field: `step [lang] field: text` with field "
        "`heading` (150 characters), `intro` (600), `button` (60) or `footer` (600). Plain text: it is "
        "shown exactly as written (escaped in the HTML), in both the HTML and the plain-text part. "
        "`{shop_name}` (Saleor's Site name) and `{first_name}` (the address's, else the account's) are "
        "filled in; a line with `{first_name}` is passed over for a shopper whose name is unknown. For a "
        "shopper's language the line with that language is used, else the line without one, else the "
        "built-in English or Turkish copy.",
    ),
    Field(
        "brand_color",
        _("Brand colour"),
        STRING,
        email_copy.DEFAULT_BRAND_COLOR,
        email_copy.parse_brand_color,
        _(
            "Accent colour #RRGGBB of the button and headings; the button text turns black or white, "
            "whichever reads better."
        ),
        example="#0B6E4F",
    ),
    Field(
        "logo_url",
        _("Logo"),
        STRING,
        "",
        email_copy.parse_logo_url,
        _(
            "An https:// image shown at the top of every reminder (about 200×60 pixels). Empty: the shop's "
            "name."
        ),
        example="https://shop.example.com/static/logo.png",
    ),
    Field(
        "retention",
        _("Data retention"),
        STRING,
        "365d",
        _duration(timedelta(days=30), timedelta(days=1095), _("That is 30 days to 3 years.")),
        _(
            "Carts and their messages whose series ended longer ago than this are deleted (daily, "
            "cart_recovery_cleanup), 30d to 1095d."
        ),
        example="365d",
        doc="Carts and their messages untouched for longer than this, with nothing left to send, are "
        "deleted by `cart_recovery_cleanup` (run daily by beat), 30d to 1095d; so are the plugin's "
        "coupons that expired unused. Suppressions (unsubscribed, bounced) are kept: an opt-out lasts. "
        "Channels where the plugin is off or misconfigured keep the default, 365d.",
    ),
)

BY_NAME: dict[str, Field] = {field.name: field for field in FIELDS}
DEFAULTS: dict[str, str] = {field.name: field.default for field in FIELDS}


def settings_table() -> str:
    """The settings table of docs/settings.md, row for row from :data:`FIELDS`."""
    rows = ["| Field | Meaning | Default | Example |", "|---|---|---|---|"]
    for field in FIELDS:
        name = f"`{field.name}`" + (" (secret)" if field.kind == SECRET else "")
        default = "<br>".join(f"`{line}`" for line in field.default.splitlines()) or "empty"
        example = "<br>".join(f"`{line}`" for line in field.example.splitlines())
        cells = [name, f"{field.label}. {field.doc or field.help}", default, example]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # python -m saleor_cart_recovery.settings.registry > table.md
    print(settings_table(), end="")
