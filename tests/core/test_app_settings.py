"""Settings edited in App mode: the Dashboard's Settings form and the API's ``updateSettings`` save
through :meth:`AppShop.save_configuration` into the app's own table, one row per channel, with the
one check every host runs (same messages; nothing stored on a bad value), the upsell products and
the channel asked of Saleor (the stand-in), and MANAGE_PLUGINS read from the caller's own token."""

import json

import pytest

from saleor_cart_recovery.app.models import ChannelSettings
from saleor_cart_recovery.exceptions import ConfigurationError
from saleor_cart_recovery.settings import registry
from saleor_cart_recovery.settings.validation import SECRET_MASK, validate_configuration
from saleor_cart_recovery.shop import get_shop

from .app_host import APP_ID
from .conftest import CONFIGURATION

GOOD = {item["name"]: item["value"] for item in CONFIGURATION}
OWNER = ("MANAGE_CHECKOUTS", "MANAGE_PLUGINS")
UPDATE = """
mutation ($active: Boolean, $input: [SettingInput!]) {
  updateSettings(active: $active, input: $input) { active settings { name value } errors { field message } }
}
"""


@pytest.fixture
def shop(installed, saleor):
    """The stand-in Saleor's shop: channels ``main`` and ``eu``, a published and a hidden product."""
    saleor.shop.add_channel("eu", "Europe", "EUR")
    saleor.shop.add_product("main", "Green Tea", ["4.50"])
    saleor.shop.add_product("main", "Secret Blend", ["9.00"], published=False)
    saleor.shop.add_product("eu", "Oolong", ["7.00"])
    return installed


def stored(slug="main"):
    row = ChannelSettings.objects.filter(channel_slug=slug).first()
    if row is None:
        return None
    return row.active, {item["name"]: item["value"] for item in row.configuration}


def dashboard_token(saleor, user_permissions=OWNER) -> str:
    """The Dashboard's token for the app (``create_access_token_for_app``): the user's own
    permissions signed in as ``user_permissions``."""
    return saleor.staff(
        type="thirdparty",
        app=APP_ID,
        permissions=["MANAGE_CHECKOUTS"],
        user_permissions=user_permissions,
        channels=("main", "eu"),
    )


def save_form(client, saleor, channel_slug="main", user_permissions=OWNER, **typed):
    values = {**registry.DEFAULTS, **(stored(channel_slug) or (False, {}))[1]}
    data = {"channel": channel_slug, "active": "true"}
    for field in registry.FIELDS:
        if field.kind == registry.BOOLEAN:
            if values[field.name].lower() == "true":
                data[field.name] = "true"
        elif field.kind != registry.SECRET:
            data[field.name] = values[field.name]
    data.update(typed)
    return client.post(
        "/dashboard/save-settings",
        data,
        headers={"Authorization": f"Bearer {dashboard_token(saleor, user_permissions)}"},
    )


def update(client, token, variables, channel_slug="main"):
    response = client.post(
        f"/channel/{channel_slug}/graphql",
        data=json.dumps({"query": UPDATE, "variables": variables}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_the_form_saves_each_channel_in_its_own_row(shop, saleor):
    # when the owner saves the form in channel main, then in eu (its first save)
    assert save_form(shop, saleor, cutoff="2h").status_code == 200
    response = save_form(shop, saleor, "eu", storefront_url="https://shop.example.eu/cart/{token}")
    assert response.status_code == 200
    assert "Saved. Cart Recovery is active in Eu." in response.content.decode()
    # then each channel has its own settings, the other untouched
    assert stored("main") == (True, {**registry.DEFAULTS, **GOOD, "cutoff": "2h"})
    active, values = stored("eu")
    assert active and values["storefront_url"] == "https://shop.example.eu/cart/{token}"
    assert values["cutoff"] == registry.DEFAULTS["cutoff"]
    # and the send path reads them
    assert get_shop().channel_settings("eu") is not None


def test_a_bad_value_on_the_form_is_named_as_everywhere_and_nothing_is_stored(shop, saleor):
    before = stored()
    response = save_form(shop, saleor, retention="5d", upsell_products="green-tea, secret-blend, nowhere")
    assert response.status_code == 400
    html = response.content.decode()
    with pytest.raises(ConfigurationError) as raised:
        validate_configuration({**GOOD, "retention": "5d"}, active=True)
    assert raised.value.errors["retention"].replace("'", "&#x27;") in html
    # the upsell products were asked of Saleor: the hidden and the unknown one are named
    assert "&#x27;secret-blend&#x27;: not published and available for purchase in channel main" in html
    assert "&#x27;nowhere&#x27;: no such product" in html and "green-tea&#x27;:" not in html
    assert stored() == before
    # nor is a channel's first save kept when it fails
    assert save_form(shop, saleor, "eu", storefront_url="").status_code == 400
    assert stored("eu") is None


def test_the_form_needs_manage_plugins_in_the_users_own_permissions(shop, saleor):
    before = stored()
    html = shop.post(
        "/dashboard/settings",
        {"channel": "main"},
        headers={"Authorization": f"Bearer {dashboard_token(saleor, ('MANAGE_CHECKOUTS',))}"},
    ).content.decode()
    assert 'id="read-only"' in html
    response = save_form(shop, saleor, user_permissions=("MANAGE_CHECKOUTS",), cutoff="2h")
    assert response.status_code == 403
    assert stored() == before


def test_update_settings_saves_per_channel_and_answers_masked(shop, saleor):
    token = saleor.staff(user_permissions=OWNER, channels=("main", "eu"))
    secret = "smtp://mailer:hunter2@mail.example.com:587"
    result = update(
        shop,
        token,
        {
            "active": True,
            "input": [
                {"name": "storefront_url", "value": "https://shop.example.eu/cart/{token}"},
                {"name": "smtp_url", "value": secret},
                {"name": "upsell_products", "value": "oolong"},
            ],
        },
        "eu",
    )["data"]["updateSettings"]
    assert result["errors"] == [] and result["active"] is True
    shown = {item["name"]: item["value"] for item in result["settings"]}
    assert shown["smtp_url"] == SECRET_MASK and "hunter2" not in json.dumps(result)
    assert stored("eu")[1]["smtp_url"] == secret and stored("eu")[1]["upsell_products"] == "oolong"
    assert stored("main") == (True, GOOD)


def test_update_settings_rejects_a_bad_value_with_the_same_message_and_stores_nothing(shop, saleor):
    token = saleor.staff(user_permissions=OWNER)
    before = stored()
    body = update(
        shop, token, {"input": [{"name": "cutoff", "value": "soon"}, {"name": "schedule", "value": "x"}]}
    )
    result = body["data"]["updateSettings"]
    with pytest.raises(ConfigurationError) as raised:
        validate_configuration({**GOOD, "cutoff": "soon", "schedule": "x"}, active=True)
    assert {error["field"]: error["message"] for error in result["errors"]} == raised.value.errors
    assert result["active"] is None and stored() == before
    # a channel Saleor does not have is refused by name, as pluginUpdate refuses it
    result = update(shop, token, {"input": [{"name": "cutoff", "value": "2h"}]}, "nowhere")
    assert [e["field"] for e in result["data"]["updateSettings"]["errors"]] == ["channel"]
    assert stored("nowhere") is None


@pytest.mark.parametrize(
    "caller",
    ["staff_without_manage_plugins", "app_without_manage_plugins"],
    ids=lambda name: f"{name}_case",
)
def test_update_settings_needs_manage_plugins_on_the_callers_own_token(shop, saleor, caller):
    if caller.startswith("staff"):
        token = saleor.staff(user_permissions=("MANAGE_CHECKOUTS",))
    else:
        token = "other-app-token-0123456789abcd"
        saleor.apps[token] = {
            "id": "QXBwOjk=",
            "isActive": True,
            "permissions": [{"code": "MANAGE_CHECKOUTS"}],
        }
    before = stored()
    body = update(shop, token, {"input": [{"name": "cutoff", "value": "2h"}]})
    assert [e["message"] for e in body["errors"]] == ["updateSettings needs the MANAGE_PLUGINS permission."]
    assert stored() == before


def test_an_app_with_manage_plugins_may_save(shop, saleor):
    token = "config-as-code-app-token-01234"
    saleor.apps[token] = {
        "id": "QXBwOjk=",
        "isActive": True,
        "permissions": [{"code": "MANAGE_CHECKOUTS"}, {"code": "MANAGE_PLUGINS"}],
    }
    result = update(shop, token, {"active": False})["data"]["updateSettings"]
    assert result["errors"] == [] and stored()[0] is False
