"""The owner's two places to edit settings, against real Saleor 3.23: the Dashboard's Settings tab
(opened with the token Saleor makes for our app) and the API's ``updateSettings`` (a staff JWT or an
app token). Both write the plugin's configuration through Saleor's own PluginsManager: what they save
is what Saleor's ``plugin(id:)`` then reads back, a bad value is refused with the message
``pluginUpdate`` gives for it, and nothing is stored."""

import json
import re
from html import unescape

import pytest
from saleor.app.models import App
from saleor.core.jwt import create_access_token, create_access_token_for_app
from saleor.graphql.tests.utils import get_graphql_content
from saleor.plugins.models import PluginConfiguration

from saleor_cart_recovery.saleor_host.dashboard import APP_IDENTIFIER
from saleor_cart_recovery.saleor_host.shop import PLUGIN_ID
from saleor_cart_recovery.settings.registry import DEFAULTS, FIELDS
from saleor_cart_recovery.settings.validation import SECRET_MASK

from .test_dashboard import install
from .utils import CONFIGURATION, PLUGIN_PATH

PAGES = "/plugins/saleor_cart_recovery/dashboard/"
API = "/plugins/channel/main/saleor_cart_recovery/graphql"
SECRET_URL = "smtp://mailer:hunter2@mail.example.com:587?tls=true"
PLUGIN = """
query ($id: ID!) {
  plugin(id: $id) { channelConfigurations { active channel { slug } configuration { name value } } }
}
"""
UPDATE_SETTINGS = """
mutation ($active: Boolean, $input: [SettingInput!]) {
  updateSettings(active: $active, input: $input) { active settings { name value } errors { field message } }
}
"""


@pytest.fixture
def owner(staff_user, permission_manage_checkouts, permission_manage_plugins):
    """Staff who may see the pages (MANAGE_CHECKOUTS) and change the plugin (MANAGE_PLUGINS)."""
    staff_user.user_permissions.add(permission_manage_checkouts, permission_manage_plugins)
    return staff_user


def dashboard_token(user) -> str:
    """The token the Dashboard hands our app page for ``user`` (Saleor's own function), once the
    Dashboard app is installed."""
    install("--url", "https://api.shop.example.com")
    return create_access_token_for_app(App.objects.get(identifier=APP_IDENTIFIER), user)


@pytest.fixture
def owner_token(cart_recovery, owner):
    return dashboard_token(owner)


@pytest.fixture
def read_plugin(staff_api_client, permission_manage_plugins):
    """Saleor's own ``plugin(id:)`` for channel "main": active and the values as Saleor shows them."""
    staff_api_client.user.user_permissions.add(permission_manage_plugins)

    def read():
        content = get_graphql_content(staff_api_client.post_graphql(PLUGIN, {"id": PLUGIN_ID}))
        [main] = [
            c for c in content["data"]["plugin"]["channelConfigurations"] if c["channel"]["slug"] == "main"
        ]
        return main["active"], {item["name"]: item["value"] for item in main["configuration"]}

    return read


def row(channel):
    config = PluginConfiguration.objects.filter(identifier=PLUGIN_ID, channel=channel).first()
    return None if config is None else (config.active, config.configuration)


def row_of_main():
    return (
        PluginConfiguration.objects.filter(identifier=PLUGIN_ID, channel__slug="main")
        .values_list("active", "configuration")
        .get()
    )


def form_of(values: dict, **changes) -> dict:
    """What the browser posts for the Settings form showing ``values``, with ``changes`` typed."""
    data = {"channel": "main", "active": "true"}
    for field in FIELDS:
        if field.kind == "secret":
            data[field.name] = ""
        elif field.kind == "boolean":
            if str(values.get(field.name, field.default)).lower() == "true":
                data[field.name] = "true"
        else:
            data[field.name] = values.get(field.name, field.default)
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}


def save(client, token, data):
    return client.post(PAGES + "save-settings", data, HTTP_AUTHORIZATION=f"Bearer {token}")


def field_html(html: str, name: str) -> str:
    found = re.search(rf'<div class="field[^"]*" data-field="{name}">(.*?)</div>', html, re.S)
    assert found, name
    return unescape(found.group(1))


def test_the_form_writes_the_plugins_configuration_that_saleor_reads_back(client, owner_token, read_plugin):
    # when the owner changes two fields and the secret on the Settings tab
    response = save(
        client, owner_token, form_of(CONFIGURATION, cutoff="2h", schedule="2h, 1d, 4d", smtp_url=SECRET_URL)
    )
    assert response.status_code == 200, response.content
    assert "Saved. Cart Recovery is active in Main Channel." in unescape(response.content.decode())
    # then Saleor's plugin(id:) shows the new values, the plugin still active, the secret masked
    active, shown = read_plugin()
    assert active is True
    assert shown["cutoff"] == "2h" and shown["schedule"] == "2h, 1d, 4d"
    assert shown["storefront_url"] == CONFIGURATION["storefront_url"]
    assert shown["smtp_url"] != SECRET_URL and "hunter2" not in shown["smtp_url"]
    # and the page never sends the secret back
    assert "hunter2" not in response.content.decode()
    # saved again with the secret left blank, Saleor keeps it
    save(client, owner_token, form_of(CONFIGURATION, cutoff="3h"))
    stored = {item["name"]: item["value"] for item in row_of_main()[1]}
    assert stored["smtp_url"] == SECRET_URL and stored["cutoff"] == "3h"


def test_a_bad_value_gets_the_message_plugin_update_gives_and_nothing_is_stored(
    client, owner_token, update_plugin, channel_USD
):
    before = row(channel_USD)
    # Saleor's own pluginUpdate, with the same bad value
    [expected] = update_plugin({**CONFIGURATION, "retention": "5d"})["errors"]
    assert row(channel_USD) == before

    # when the owner saves it on the Settings tab, along with a good change
    response = save(client, owner_token, form_of(CONFIGURATION, retention="5d", cutoff="2h"))

    # then the form comes back as typed with the same message on that field, and nothing changed
    assert response.status_code == 400
    html = response.content.decode()
    retention = field_html(html, "retention")
    assert expected["message"] in retention and 'aria-invalid="true"' in retention
    assert 'value="2h"' in field_html(html, "cutoff")
    assert row(channel_USD) == before


def test_activating_without_a_link_is_refused_and_a_first_save_leaves_no_row(
    client, settings, channel_USD, owner
):
    # given the plugin was never configured in channel "main" (no row yet)
    settings.PLUGINS = [PLUGIN_PATH]
    token = dashboard_token(owner)
    assert row(channel_USD) is None
    # when the owner turns it on without a recovery link
    response = save(client, token, form_of(DEFAULTS))
    # then the link's field says why, as pluginUpdate says it, and not even Saleor's default row was kept
    assert response.status_code == 400
    assert "Cart recovery link: required to activate the plugin" in field_html(
        response.content.decode(), "storefront_url"
    )
    assert row(channel_USD) is None


def test_staff_without_manage_plugins_cannot_save(
    client, cart_recovery, staff_user, permission_manage_checkouts, channel_USD
):
    staff_user.user_permissions.add(permission_manage_checkouts)
    token = dashboard_token(staff_user)
    before = row(channel_USD)
    shown = client.post(PAGES + "settings", {}, HTTP_AUTHORIZATION=f"Bearer {token}").content.decode()
    assert 'id="read-only"' in shown and "<fieldset disabled>" in shown
    response = save(client, token, form_of(CONFIGURATION, cutoff="2h"))
    assert response.status_code == 403 and "MANAGE_PLUGINS" in response.content.decode()
    assert row(channel_USD) == before


def update_settings(client, token, variables):
    body = json.dumps({"query": UPDATE_SETTINGS, "variables": variables})
    response = client.post(
        API, data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_update_settings_writes_what_plugin_update_reads_and_refuses_what_it_refuses(
    client, cart_recovery, owner, read_plugin, update_plugin, channel_USD
):
    token = create_access_token(owner)
    # a change through the API is what Saleor shows
    result = update_settings(
        client,
        token,
        {"input": [{"name": "cutoff", "value": "2h"}, {"name": "smtp_url", "value": SECRET_URL}]},
    )["data"]["updateSettings"]
    assert result["errors"] == [] and result["active"] is True
    assert {s["name"]: s["value"] for s in result["settings"]}["smtp_url"] == SECRET_MASK
    active, shown = read_plugin()
    assert active is True and shown["cutoff"] == "2h" and "hunter2" not in shown["smtp_url"]
    # a bad value: the message pluginUpdate gives, and nothing stored
    before = row(channel_USD)
    bad = {"brand_color": "red", "schedule": "later"}
    expected = {e["field"]: e["message"] for e in update_plugin({**CONFIGURATION, **bad})["errors"]}
    result = update_settings(client, token, {"input": [{"name": k, "value": v} for k, v in bad.items()]})
    errors = {e["field"]: e["message"] for e in result["data"]["updateSettings"]["errors"]}
    assert errors == {"brand_color": expected["brandColor"], "schedule": expected["schedule"]}
    assert row(channel_USD) == before
    # and switching off is Saleor's active flag
    result = update_settings(client, token, {"active": False})["data"]["updateSettings"]
    assert result == {**result, "active": False, "errors": []}
    assert read_plugin()[0] is False


def test_an_app_with_manage_plugins_may_update_settings_and_one_without_may_not(
    client, cart_recovery, app, permission_manage_plugins, permission_manage_checkouts, channel_USD
):
    app.permissions.add(permission_manage_checkouts)
    _, token = app.tokens.create(name="api")
    before = row(channel_USD)
    refused = update_settings(client, token, {"input": [{"name": "cutoff", "value": "2h"}]})
    assert refused["errors"][0]["message"] == "updateSettings needs the MANAGE_PLUGINS permission."
    assert row(channel_USD) == before
    app.permissions.add(permission_manage_plugins)
    result = update_settings(client, token, {"input": [{"name": "cutoff", "value": "2h"}]})
    assert result["data"]["updateSettings"]["errors"] == []
    assert {item["name"]: item["value"] for item in row_of_main()[1]}["cutoff"] == "2h"


def test_unknown_upsell_products_are_refused_as_plugin_update_refuses_them(
    client, cart_recovery, owner, update_plugin, channel_USD, product
):
    before = row(channel_USD)
    [expected] = update_plugin({**CONFIGURATION, "upsell_products": f"{product.slug}, no-such-thing"})[
        "errors"
    ]
    result = update_settings(
        client,
        create_access_token(owner),
        {"input": [{"name": "upsell_products", "value": f"{product.slug}, no-such-thing"}]},
    )["data"]["updateSettings"]
    assert result["errors"] == [{"field": "upsell_products", "message": expected["message"]}]
    assert "'no-such-thing': no such product" in expected["message"]
    assert row(channel_USD) == before
