"""Experiment settings saved through Saleor's real `pluginUpdate`, as the Dashboard does."""

import pytest
from saleor.graphql.tests.utils import get_graphql_content

from saleor_cart_recovery.saleor_host.shop import PLUGIN_ID, SaleorShop

from .test_configuration import GOOD, PLUGIN_UPDATE, stored
from .utils import PLUGIN_PATH, gid


@pytest.fixture
def save(staff_api_client, permission_manage_plugins, channel_USD, settings):
    settings.PLUGINS = [PLUGIN_PATH]
    staff_api_client.user.user_permissions.add(permission_manage_plugins)

    def save(values: dict) -> dict:
        variables = {
            "id": PLUGIN_ID,
            "channelId": gid(channel_USD),
            "input": {"active": True, "configuration": [{"name": k, "value": v} for k, v in values.items()]},
        }
        return get_graphql_content(staff_api_client.post_graphql(PLUGIN_UPDATE, variables))["data"][
            "pluginUpdate"
        ]

    return save


def test_experiment_settings_are_saved_and_used(save, channel_USD):
    # when staff saves a cadence test, a 3-day window and switches the automatic winner on
    result = save(
        {
            **GOOD,
            "cadences": "A: 2h, 1d, 5d | B: 12h, 2d, 8d",
            "attribution_window": "3d",
            "auto_winner": "true",
            "winner_min_recipients": "500",
        }
    )
    # then it is stored and the shop's settings for the channel carry it
    assert result["errors"] == []
    assert stored(channel_USD)[1]["cadences"] == "A: 2h, 1d, 5d | B: 12h, 2d, 8d"
    experiments = SaleorShop().channel_settings("main").experiments
    assert [c.label for c in experiments.cadences] == ["A", "B"]
    assert (
        experiments.attribution_window.days,
        experiments.auto_winner,
        experiments.winner_min_recipients,
    ) == (
        3,
        True,
        500,
    )


def test_a_bad_cadence_is_rejected_naming_the_field(save, channel_USD):
    result = save({**GOOD, "cadences": "A: 2h, 1d | B: 12h, 2d"})
    [error] = result["errors"]
    assert error["field"] == "cadences"
    assert (
        error["message"] == "Cadence test: cadence A has 2 step(s) but the schedule has 3; "
        "every cadence needs one delay per step"
    )
    assert result["plugin"] is None
