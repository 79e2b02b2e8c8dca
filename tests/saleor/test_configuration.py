"""Dashboard configuration through Saleor's real `pluginUpdate` mutation."""

import pytest
from saleor.plugins.models import PluginConfiguration

from saleor_cart_recovery.saleor_host.shop import PLUGIN_ID
from saleor_cart_recovery.settings.registry import DEFAULTS as DEFAULT_VALUES

from .utils import CONFIGURATION

GOOD = {
    "schedule": "2h, 1d, 5d",
    "cutoff": "45m",
    "subjects": "1: Still there?\n2: Your cart misses you\n3: Final reminder\n1 [de]: Noch da?",
    "storefront_url": "https://store.example.org/restore?cart={token}",
    "from_email": "Store <hello@store.example.org>",
    "smtp_url": "smtp://mailer:s3cret@mail.example.org:587?tls=true",
}


def stored(channel):
    config = PluginConfiguration.objects.filter(identifier=PLUGIN_ID, channel=channel).first()
    if config is None:
        return None
    return config.active, {item["name"]: item["value"] for item in config.configuration}


def test_good_values_are_saved_and_the_secret_is_not_echoed(update_plugin, channel_USD):
    # when staff saves a complete, valid configuration and turns the plugin on
    result = update_plugin(GOOD, active=True)

    # then there are no errors and channel "main" shows the plugin active with the new values
    assert result["errors"] == []
    [main] = [c for c in result["plugin"]["channelConfigurations"] if c["channel"]["slug"] == "main"]
    shown = {item["name"]: item["value"] for item in main["configuration"]}
    assert main["active"] is True
    assert {k: shown[k] for k in GOOD if k != "smtp_url"} == {
        k: v for k, v in GOOD.items() if k != "smtp_url"
    }
    # and the SMTP password is never sent back, only the secret's last characters
    assert "s3cret" not in shown["smtp_url"]
    # and everything is stored as given
    active, values = stored(channel_USD)
    assert active is True
    assert {k: values[k] for k in GOOD} == GOOD


@pytest.mark.parametrize(
    ("name", "value", "field", "says"),
    [
        ("schedule", "1x", "schedule", "Reminder schedule: '1x' is not a duration"),
        ("cutoff", "", "cutoff", "Abandonment cutoff: '' is not a duration"),
        ("subjects", "1: Hi\n2: Hello\n3: Bye\n4: Too far", "subjects", "step 4"),
        (
            "subjects",
            "1: A\n1: B\n2: C\n3: D\n1 [tr]: Tr",
            "subjects",
            "step 1 has 2 subject variants but 1 in [tr]",
        ),
        ("storefront_url", "https://shop.example.com/cart", "storefrontUrl", "{token}"),
        ("smtp_url", "http://x", "smtpUrl", "smtp://"),
        ("holdout_percent", "60", "holdoutPercent", "Holdout share: must be between 0 and 50"),
        ("schedule", "1h, 3650000d", "schedule", "Reminder schedule: '3650000d' must be between 10s and 90d"),
        ("schedule", "1h, 99999999999d", "schedule", "Reminder schedule: '99999999999d' must be between"),
        ("coupon_valid_for", "9" * 30 + "d", "couponValidFor", "Coupon validity: must be between 1h and 30d"),
    ],
)
def test_a_bad_value_is_rejected_naming_its_field_and_nothing_is_stored(
    update_plugin, enable_cart_recovery, channel_USD, name, value, field, says
):
    # given the plugin is configured and active
    enable_cart_recovery()
    before = stored(channel_USD)

    # when staff saves one bad value along with good ones
    result = update_plugin({**GOOD, name: value}, active=True)

    # then the mutation answers with one error for that field, saying what is wrong
    assert len(result["errors"]) == 1, result["errors"]
    [error] = result["errors"]
    assert error["field"] == field
    assert error["code"] == "INVALID"
    assert says in error["message"]
    assert result["plugin"] is None
    # and nothing changed in the database, not even the good values
    assert stored(channel_USD) == before
    assert before[1]["schedule"] == CONFIGURATION["schedule"]


def test_several_bad_values_are_all_reported_on_a_first_save(update_plugin, channel_USD):
    # given the plugin was never configured in channel "main"
    assert stored(channel_USD) is None

    # when staff saves two bad values at once
    result = update_plugin({**GOOD, "schedule": "soon", "from_email": "not an address"}, active=True)

    # then both fields are named
    assert sorted(e["field"] for e in result["errors"]) == ["fromEmail", "schedule"]
    # and none of the submitted values was stored: Saleor's manager creates the row with the
    # plugin's defaults before it validates (get_or_create), so an inactive default row remains
    active, values = stored(channel_USD)
    assert active is False
    assert values == DEFAULT_VALUES


def test_activating_without_a_storefront_url_is_rejected(update_plugin, channel_USD):
    # given a configuration without the recovery link is acceptable while the plugin is off
    assert update_plugin({**GOOD, "storefront_url": ""}, active=False)["errors"] == []

    # when staff turns the plugin on
    result = update_plugin({}, active=True)

    # then it is refused because the emails would have no link, and the plugin stays off
    [error] = result["errors"]
    assert error["field"] == "storefrontUrl"
    assert error["code"] == "REQUIRED"
    assert "required to activate" in error["message"]
    assert stored(channel_USD)[0] is False


@pytest.mark.parametrize(
    ("language", "says"),
    [
        ("tr", "Terk edilme eşiği: 'soon' bir süre değil"),
        ("de", "Abbruchschwelle: „soon“ ist keine Dauer"),
        ("fr", "Abandonment cutoff: 'soon' is not a duration"),  # no catalog of ours: English
        ("en", "Abandonment cutoff: 'soon' is not a duration"),
    ],
    ids=lambda value: f"{value}_case",
)
def test_plugin_update_speaks_the_staff_users_language(
    update_plugin, staff_api_client, channel_USD, language, says
):
    # given a staff user whose preferred language (User.language_code) is ``language``: the best
    # Saleor lets a plugin know (pluginUpdate gives a plugin no request, and the Dashboard keeps
    # its own language switch in the browser)
    staff_api_client.user.language_code = language
    staff_api_client.user.save(update_fields=["language_code"])
    # when they save a bad value
    result = update_plugin({"cutoff": "soon"}, active=False)
    # then the message is in that language, and the value is not stored (Saleor keeps the row of
    # defaults it creates before validating a channel's first save)
    [error] = result["errors"]
    assert error["field"] == "cutoff" and error["message"].startswith(says)
    assert stored(channel_USD)[1]["cutoff"] == DEFAULT_VALUES["cutoff"]
