"""Settings edited by the owner in both of our own places: the Dashboard's Settings tab (a form drawn
from the registry) and the API's ``updateSettings``. Both save through the shop port's
``save_configuration`` and the one check, :func:`validate_configuration`, that the plugin's
``pluginUpdate`` also runs (the Saleor suite checks that side): every bad field named with the
same message, nothing stored on a bad value, secrets write-only, MANAGE_PLUGINS to save."""

import json
import re
from html import unescape

import pytest

from saleor_cart_recovery.exceptions import ConfigurationError
from saleor_cart_recovery.settings import registry
from saleor_cart_recovery.settings.validation import (
    SECRET_MASK,
    changes_to_save,
    shown_configuration,
    validate_configuration,
)
from tests.shopapp.models import ShopChannel, ShopProduct
from tests.shopapp.shop import DbShop

from .conftest import CONFIGURATION

DASHBOARD = "/plugins/saleor_cart_recovery/dashboard/"
VIEWER = "staff:owner@shop.example.com:MANAGE_CHECKOUTS:*"
OWNER = "staff:owner@shop.example.com:MANAGE_CHECKOUTS+MANAGE_PLUGINS:*"
API = "/plugins/channel/main/saleor_cart_recovery/graphql"
GOOD = {item["name"]: item["value"] for item in CONFIGURATION}
SECRET_URL = "smtp://mailer:hunter2@mail.example.com:587?tls=true"
UPDATE = """
mutation ($active: Boolean, $input: [SettingInput!]) {
  updateSettings(active: $active, input: $input) {
    active
    settings { name value }
    errors { field message }
  }
}
"""


def stored(slug="main"):
    channel = ShopChannel.objects.filter(slug=slug).first()
    if channel is None:
        return None
    return channel.active, {item["name"]: str(item["value"]) for item in channel.configuration}


# -- The one check -------------------------------------------------------------------------------


def test_every_bad_field_is_named_with_its_label_at_once():
    # when several fields are wrong at once, one of them only checked on save (a language with
    # another number of subject variants) and one only when the plugin is to be active
    with pytest.raises(ConfigurationError) as raised:
        validate_configuration(
            {
                "schedule": "1h, 1d",
                "cutoff": "soon",
                "subjects": "1: A\n1: B\n2: C\n1 [tr]: Tr",
                "holdout_percent": "60",
                "storefront_url": "",
            },
            active=True,
        )
    # then each is named, in the registry's order, its message starting with the field's label
    errors = raised.value.errors
    assert list(errors) == ["cutoff", "subjects", "storefront_url", "holdout_percent"]
    assert errors["cutoff"].startswith("Abandonment cutoff: 'soon' is not a duration")
    assert errors["subjects"].startswith("Subject lines: step 1 has 2 subject variants but 1 in [tr]")
    assert errors["holdout_percent"].startswith("Holdout share: must be between 0 and 50")
    # and the missing link is the one "required" problem (pluginUpdate's REQUIRED code)
    assert errors["storefront_url"].startswith("Cart recovery link: required to activate the plugin")
    assert raised.value.required == {"storefront_url"}


def test_the_link_is_required_only_to_activate():
    settings = validate_configuration({"storefront_url": ""}, active=False)
    assert settings.schedule and settings.storefront_url == ""


def test_upsell_products_are_checked_in_the_channel():
    asked = []

    def check(refs):
        asked.append(refs)
        return {"gone": "no such product"}

    with pytest.raises(ConfigurationError) as raised:
        validate_configuration(
            {**GOOD, "upsell_products": "kept, gone"}, active=True, unavailable_products=check
        )
    assert raised.value.errors == {"upsell_products": "Upsell products: 'gone': no such product"}
    assert asked == [("kept", "gone")]
    # "auto" and no products ask nothing
    validate_configuration({**GOOD, "upsell_products": "auto"}, active=True, unavailable_products=check)
    assert len(asked) == 1


def test_a_product_check_that_fails_asks_to_save_again(caplog):
    def broken(refs):
        raise RuntimeError("database went away")

    with pytest.raises(ConfigurationError) as raised:
        validate_configuration({**GOOD, "upsell_products": "a"}, active=False, unavailable_products=broken)
    assert raised.value.errors == {
        "upsell_products": "Upsell products: could not be checked right now; try saving again"
    }
    assert "database went away" in caplog.text


def test_changes_keep_a_blank_or_masked_secret_and_reset_to_defaults():
    assert changes_to_save({"smtp_url": "", "cutoff": "1h"}) == {"cutoff": "1h"}
    assert changes_to_save({"smtp_url": SECRET_MASK}) == {}
    assert changes_to_save({"smtp_url": None, "schedule": None}) == {"smtp_url": "", "schedule": "1h, 1d, 3d"}
    with pytest.raises(ConfigurationError) as raised:
        changes_to_save({"cutoff": "1h", "sender": "x", "colour": "y"})
    assert raised.value.errors == {
        "sender": "'sender' is not a setting of Cart Recovery",
        "colour": "'colour' is not a setting of Cart Recovery",
    }


def test_shown_settings_mask_the_secret():
    shown = shown_configuration({"smtp_url": SECRET_URL, "cutoff": "2h"})
    assert list(shown) == [field.name for field in registry.FIELDS]
    assert shown["smtp_url"] == SECRET_MASK and shown["cutoff"] == "2h"
    assert (
        shown_configuration(None)["smtp_url"] == "" and shown_configuration(None)["schedule"] == "1h, 1d, 3d"
    )


# -- The test shop's side of the port --------------------------------------------------------------


def test_save_configuration_changes_only_the_named_fields(channel):
    channel.configuration = [*CONFIGURATION[:-1], {"name": "smtp_url", "value": SECRET_URL}]
    channel.save()
    assert DbShop().save_configuration("main", {"cutoff": "2h", "smtp_url": ""}, None) is True
    active, values = stored()
    assert active is True
    assert values["cutoff"] == "2h" and values["smtp_url"] == SECRET_URL
    assert values["schedule"] == GOOD["schedule"]


def test_save_configuration_stores_nothing_on_a_bad_value(channel):
    before = stored()
    with pytest.raises(ConfigurationError) as raised:
        DbShop().save_configuration("main", {"cutoff": "2h", "schedule": "later"}, False)
    assert list(raised.value.errors) == ["schedule"]
    assert stored() == before


def test_a_first_save_of_a_channel_that_fails_leaves_no_trace(db):
    with pytest.raises(ConfigurationError):
        DbShop().save_configuration("new", {"storefront_url": ""}, True)
    assert stored("new") is None


def test_unknown_or_unpublished_upsell_products_are_refused_on_save(channel):
    ShopProduct.objects.create(
        channel=channel, slug="hidden", name="Hidden", category="c", variant_id="9", price=5, published=False
    )
    with pytest.raises(ConfigurationError) as raised:
        DbShop().save_configuration("main", {"upsell_products": "hidden, nowhere"}, None)
    assert raised.value.errors["upsell_products"] == (
        "Upsell products: 'hidden': not published and available for purchase in channel main; "
        "'nowhere': no such product"
    )


# -- The Dashboard's Settings tab ----------------------------------------------------------------


def page(client, name, data=None, auth=OWNER, locale="en-US"):
    return client.post(
        DASHBOARD + name, data or {}, HTTP_AUTHORIZATION=f"Bearer {auth}", HTTP_X_DASHBOARD_LOCALE=locale
    )


def form_of(channel_slug="main", **changes) -> dict:
    """What the browser posts for the form as shown, with ``changes`` typed in (checkboxes: only
    when ticked)."""
    values = (
        {**registry.DEFAULTS, **stored(channel_slug)[1]} if stored(channel_slug) else dict(registry.DEFAULTS)
    )
    data = {"channel": channel_slug, "active": "true"}
    for field in registry.FIELDS:
        if field.kind == registry.SECRET:
            data[field.name] = ""
        elif field.kind == registry.BOOLEAN:
            if values[field.name].lower() == "true":
                data[field.name] = "true"
        else:
            data[field.name] = values[field.name]
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}


def field_html(html: str, name: str) -> str:
    found = re.search(rf'<div class="field[^"]*" data-field="{name}">(.*?)</div>', html, re.S)
    assert found, name
    return found.group(1)


@pytest.mark.parametrize(
    ("locale", "default", "empty", "switch"),
    [
        ("tr-TR", "Varsayılan: <code>30m</code>", "Varsayılanı boş.", "Varsayılan: <code>kapalı</code>"),
        ("de-DE", "Standard: <code>30m</code>", "Standardmäßig leer.", "Standard: <code>aus</code>"),
    ],
    ids=["turkish_case", "german_case"],
)
def test_the_defaults_are_said_in_the_pages_language(client, channel, locale, default, empty, switch):
    html = unescape(page(client, "settings", locale=locale).content.decode())
    # a value shows as typed (the field takes it so in every language), and as the field's placeholder
    assert default in field_html(html, "cutoff") and 'placeholder="30m"' in field_html(html, "cutoff")
    # no default: said in words, and no placeholder (never the word for "empty" in the field itself)
    assert empty in field_html(html, "coupon_step") and "placeholder" not in field_html(html, "coupon_step")
    assert switch in field_html(html, "auto_winner")


def test_the_form_is_drawn_from_the_registry_with_defaults_and_no_secret(client, channel):
    channel.configuration = [*CONFIGURATION[:-1], {"name": "smtp_url", "value": SECRET_URL}]
    channel.save()
    html = page(client, "settings").content.decode()
    # every field of the registry, with its label, help and default
    for field in registry.FIELDS:
        shown = field_html(html, field.name)
        assert str(field.label) in shown and f"<code>{field.name}</code>" in shown
        assert ("Default: <code>" if field.default else "Empty by default.") in shown
    assert unescape(field_html(html, "schedule")).count('placeholder="1h, 1d, 3d"') == 1
    assert "placeholder" not in field_html(html, "coupon_step")  # no default: nothing to suggest
    assert 'value="https://shop.example.com/cart/{token}"' in field_html(html, "storefront_url")
    # multiline fields are text areas, booleans checkboxes, the secret a password field left empty
    assert "<textarea" in field_html(html, "subjects")
    assert 'type="checkbox"' in field_html(html, "auto_winner")
    secret = field_html(html, "smtp_url")
    assert 'type="password"' in secret and 'value=""' in secret and "leave blank to keep it" in secret
    assert "hunter2" not in html and "mailer:" not in html and "//mailer" not in html  # the user too
    # and the owner may save it
    assert (
        'id="save-settings"' in html
        and "disabled" not in html.split('id="fields-title"')[1].split("<legend")[0]
    )


def test_saving_the_form_stores_the_values_and_switches_the_channel(client, channel):
    response = page(client, "save-settings", form_of(cutoff="2h", active=None, auto_winner="true"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Saved. Cart Recovery is switched off in Main." in html
    active, values = stored()
    assert active is False and values["cutoff"] == "2h" and values["auto_winner"] == "true"
    assert values["schedule"] == GOOD["schedule"]
    # the page shows what is stored now: the channel off (in the frame's notice and picker too)
    assert "Cart Recovery is switched off in Main: no reminder goes out there." in html
    assert ">Main (off)</option>" in html
    assert 'id="setting-active" name="active" value="true" checked' not in html
    assert "checked" in field_html(html, "auto_winner")
    # switched on again, the frame says so at once
    html = page(client, "save-settings", form_of()).content.decode()
    assert "switched off" not in html and ">Main</option>" in html
    # text areas arrive with the browser's line ends and are stored with \n
    page(client, "save-settings", form_of(subjects="1: A\r\n2: B\r\n3: C"))
    assert stored()[1]["subjects"] == "1: A\n2: B\n3: C"


def test_every_bad_field_is_marked_on_the_form_as_typed_and_nothing_is_stored(client, channel):
    before = stored()
    typed = form_of(
        cutoff="soon", holdout_percent="60", from_email="Shop <shop@example.com>", schedule="2h, 2d, 4d"
    )
    response = page(client, "save-settings", typed)
    assert response.status_code == 400
    html = response.content.decode()
    assert "2 settings are not valid: nothing was saved." in html
    cutoff = field_html(html, "cutoff")
    assert (
        'aria-invalid="true"' in cutoff and "Abandonment cutoff: &#x27;soon&#x27; is not a duration" in cutoff
    )
    assert "Holdout share: must be between 0 and 50" in field_html(html, "holdout_percent")
    # the good values typed are still there, not marked
    schedule = field_html(html, "schedule")
    assert 'value="2h, 2d, 4d"' in schedule and "aria-invalid" not in schedule
    assert stored() == before


def test_the_same_message_as_the_api_and_the_plugin(client, channel):
    # the form's message for a value is the check's, word for word
    with pytest.raises(ConfigurationError) as raised:
        validate_configuration({**GOOD, "retention": "5d"}, active=True)
    html = page(client, "save-settings", form_of(retention="5d")).content.decode()
    assert unescape(field_html(html, "retention")).count(raised.value.errors["retention"]) == 1


def test_activating_without_a_link_is_refused_on_its_field(client, db):
    ShopChannel.objects.create(slug="main", active=False, configuration=[])
    html = page(client, "save-settings", form_of(storefront_url="")).content.decode()
    assert "Cart recovery link: required to activate the plugin" in field_html(html, "storefront_url")
    assert stored() == (False, {})


def test_a_secret_is_write_only_kept_when_blank_and_removed_on_request(client, channel):
    # typed once, it is stored and never shown again
    page(client, "save-settings", form_of(smtp_url=SECRET_URL))
    assert stored()[1]["smtp_url"] == SECRET_URL
    html = page(client, "settings").content.decode()
    assert "hunter2" not in html and "Remove the stored value" in field_html(html, "smtp_url")
    # saved again with the field left blank, it is kept
    page(client, "save-settings", form_of(cutoff="1h"))
    assert stored()[1]["smtp_url"] == SECRET_URL and stored()[1]["cutoff"] == "1h"
    # a bad value elsewhere: the typed secret is not echoed back either
    html = page(
        client, "save-settings", form_of(cutoff="x", smtp_url="smtp://a:typed-secret@h:25")
    ).content.decode()
    assert "typed-secret" not in html and stored()[1]["smtp_url"] == SECRET_URL
    # a bad secret is named like any other field
    html = page(client, "save-settings", form_of(smtp_url="http://mail.example.com")).content.decode()
    assert "SMTP server:" in field_html(html, "smtp_url")
    # removed on request: back to Saleor's email settings
    page(client, "save-settings", form_of(smtp_url__clear="1"))
    assert stored()[1]["smtp_url"] == ""


def test_staff_without_manage_plugins_see_the_form_but_cannot_save(client, channel):
    before = stored()
    html = page(client, "settings", auth=VIEWER).content.decode()
    assert 'id="read-only"' in html and "<fieldset disabled>" in html
    response = page(client, "save-settings", form_of(cutoff="2h"), auth=VIEWER)
    assert response.status_code == 403
    assert "Saving the settings needs the MANAGE_PLUGINS permission." in response.content.decode()
    assert stored() == before


def test_saving_needs_a_dashboard_token(client, channel):
    before = stored()
    assert client.post(DASHBOARD + "save-settings", form_of(cutoff="2h")).status_code == 401
    assert page(client, "save-settings", form_of(cutoff="2h"), auth="forged").status_code == 401
    assert stored() == before


# -- The API's updateSettings --------------------------------------------------------------------


def update(client, variables, staff="MANAGE_PLUGINS"):
    response = client.post(
        API,
        data=json.dumps({"query": UPDATE, "variables": variables}),
        content_type="application/json",
        HTTP_X_TEST_STAFF=staff,
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_update_settings_saves_the_named_settings_and_answers_them_masked(client, channel):
    body = update(
        client,
        {
            "active": True,
            "input": [{"name": "cutoff", "value": "2h"}, {"name": "smtp_url", "value": SECRET_URL}],
        },
    )
    result = body["data"]["updateSettings"]
    assert result["errors"] == [] and result["active"] is True
    shown = {item["name"]: item["value"] for item in result["settings"]}
    assert list(shown) == [field.name for field in registry.FIELDS]
    assert shown["cutoff"] == "2h" and shown["smtp_url"] == SECRET_MASK
    assert "hunter2" not in json.dumps(body)
    assert stored()[1]["smtp_url"] == SECRET_URL
    # what it answered, sent back as it is, changes nothing (the mask keeps the secret)
    again = update(client, {"input": result["settings"]})["data"]["updateSettings"]
    assert again["errors"] == [] and stored()[1]["smtp_url"] == SECRET_URL


def test_update_settings_names_every_bad_field_and_stores_nothing(client, channel):
    before = stored()
    result = update(
        client,
        {
            "input": [
                {"name": "cutoff", "value": "soon"},
                {"name": "schedule", "value": "2h, 2d, 4d"},
                {"name": "brand_color", "value": "red"},
                {"name": "colour", "value": "#000000"},
            ]
        },
    )["data"]["updateSettings"]
    assert result["active"] is None
    errors = {error["field"]: error["message"] for error in result["errors"]}
    assert errors == {"colour": "'colour' is not a setting of Cart Recovery"}
    result = update(
        client, {"input": [{"name": "cutoff", "value": "soon"}, {"name": "brand_color", "value": "red"}]}
    )["data"]["updateSettings"]
    with pytest.raises(ConfigurationError) as raised:
        validate_configuration({**GOOD, "cutoff": "soon", "brand_color": "red"}, active=True)
    assert {error["field"]: error["message"] for error in result["errors"]} == raised.value.errors
    assert stored() == before
    # the settings answered are the stored ones
    assert {item["name"]: item["value"] for item in result["settings"]}["cutoff"] == GOOD["cutoff"]


def test_update_settings_can_switch_off_and_reset_to_a_default(client, channel):
    result = update(client, {"active": False, "input": [{"name": "schedule", "value": None}]})
    assert result["data"]["updateSettings"]["active"] is False
    assert stored()[0] is False and stored()[1]["schedule"] == "1h, 1d, 3d"


def test_a_name_given_twice_is_an_error(client, channel):
    before = stored()
    result = update(
        client, {"input": [{"name": "cutoff", "value": "1h"}, {"name": "cutoff", "value": "2h"}]}
    )["data"]["updateSettings"]
    assert result["errors"] == [{"field": "cutoff", "message": "'cutoff' is given more than once."}]
    assert stored() == before


def test_update_settings_needs_manage_plugins(client, channel):
    before = stored()
    body = update(client, {"input": [{"name": "cutoff", "value": "2h"}]}, staff="MANAGE_CHECKOUTS")
    assert body["data"]["updateSettings"] is None
    assert [error["message"] for error in body["errors"]] == [
        "updateSettings needs the MANAGE_PLUGINS permission."
    ]
    assert stored() == before


def test_the_settings_query_shows_them_as_stored_to_whoever_may_use_the_api(client, channel):
    channel.configuration = [*CONFIGURATION[:-1], {"name": "smtp_url", "value": SECRET_URL}]
    channel.save()
    response = client.post(
        API,
        data=json.dumps({"query": "{ settings { name value } }"}),
        content_type="application/json",
        HTTP_X_TEST_STAFF="MANAGE_CHECKOUTS",
    )
    shown = {item["name"]: item["value"] for item in response.json()["data"]["settings"]}
    assert shown == {**registry.DEFAULTS, **GOOD, "smtp_url": SECRET_MASK}
    assert "hunter2" not in response.content.decode()
