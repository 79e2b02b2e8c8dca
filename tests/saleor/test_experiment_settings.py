"""Experiment settings saved through Saleor's real `pluginUpdate`, as the Dashboard does."""

from saleor_cart_recovery.saleor_host.shop import SaleorShop

from .test_configuration import GOOD, stored


def test_experiment_settings_are_saved_and_used(update_plugin, channel_USD):
    # when staff saves a cadence test, a 3-day window and switches the automatic winner on
    result = update_plugin(
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


def test_a_bad_cadence_is_rejected_naming_the_field(update_plugin, channel_USD):
    result = update_plugin({**GOOD, "cadences": "A: 2h, 1d | B: 12h, 2d"})
    [error] = result["errors"]
    assert error["field"] == "cadences"
    assert (
        error["message"] == "Cadence test: cadence A has 2 steps but the schedule has 3; "
        "every cadence needs one delay per step"
    )
    assert result["plugin"] is None
