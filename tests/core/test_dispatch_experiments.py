"""The dispatcher with cadence variants and the automatic winner."""

from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache

from saleor_cart_recovery.experiments.report import build_report
from saleor_cart_recovery.experiments.rollup import rollup
from saleor_cart_recovery.models import RecoveryCart, RecoveryMessage, RecoveryWinner
from saleor_cart_recovery.series.dispatch import dispatch
from saleor_cart_recovery.settings.channel import RecoverySettings
from tests.shopapp.shop import DbShop

from .conftest import CONFIGURATION, START, make_checkout, touch

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
CADENCES = "A: 1h, 1d, 3d | B: 12h, 2d, 8d"


@pytest.fixture
def experiment(channel):
    cache.clear()

    def configure(**values):
        merged = {**{item["name"]: item["value"] for item in CONFIGURATION}, "cadences": CADENCES, **values}
        channel.configuration = [{"name": name, "value": value} for name, value in merged.items()]
        channel.save()
        return RecoverySettings.from_plugin_configuration(channel.configuration)

    return configure


def carts_left_at_start(channel, settings, count, at=START):
    checkouts = [make_checkout(channel, email=f"s{n}@example.com") for n in range(count)]
    for checkout in checkouts:
        touch(checkout, at, settings)
    return checkouts


def test_each_cart_follows_its_own_cadence(channel, experiment):
    settings = experiment()
    carts_left_at_start(channel, settings, 40)
    # the cadence is decided at the cart's first activity, before anything is due
    assert set(RecoveryCart.objects.values_list("cadence", flat=True)) == {"A", "B"}
    # when the dispatcher runs at the soonest first step (1h, cadence A)
    dispatch(now=START + HOUR, send=lambda message_id: None)
    carts = list(RecoveryCart.objects.all())
    by_cadence = Counter(c.cadence for c in carts)
    # then every cart got a cadence at its first activity, recorded, with both arms used
    assert set(by_cadence) == {"A", "B"}
    planned = {m.cart.cadence for m in RecoveryMessage.objects.select_related("cart")}
    # and only cadence A carts got step 1 now; B carts wait until 12h
    assert planned == {"A"} and RecoveryMessage.objects.count() == by_cadence["A"]
    assert {c.next_due_at for c in carts if c.cadence == "B"} == {START + 12 * HOUR}
    assert {c.next_due_at for c in carts if c.cadence == "A"} == {START + DAY}
    # when it runs at 12h: B carts get step 1; nobody changed cadence
    dispatch(now=START + 12 * HOUR, send=lambda message_id: None)
    assert RecoveryMessage.objects.filter(step=1).count() == 40
    assert Counter(c.cadence for c in RecoveryCart.objects.all()) == by_cadence


def seed_results(settings, *, conversions, carts=400, prefix="seed"):
    """Finished carts of the current version, ``carts`` per arm: cadence A with step-1 subject A,
    cadence B with subject B; ``conversions[arm]`` of them bought an hour after their email."""
    version, made = settings.experiments.version, []
    for arm in ("A", "B"):
        for index in range(carts):
            converted = index < conversions[arm]
            made.append(
                RecoveryCart(
                    checkout_token=f"{prefix}-{arm}-{index}",
                    channel_slug="main",
                    email=f"{prefix}{arm}{index}@example.com",
                    status="converted" if converted else "finished",
                    experiment=version,
                    cadence=arm,
                    last_activity_at=START - 30 * DAY,
                    created_at=START - 30 * DAY,
                    updated_at=START - 30 * DAY,
                    order_id=f"{prefix}-o{arm}{index}" if converted else "",
                    order_total=Decimal("10.00") if converted else None,
                    order_currency="USD" if converted else "",
                    conversion_match="token" if converted else "",
                    converted_at=START - 29 * DAY if converted else None,
                )
            )
    RecoveryCart.objects.bulk_create(made)
    RecoveryMessage.objects.bulk_create(
        RecoveryMessage(
            cart=cart,
            step=1,
            status="sent",
            variant=0 if cart.cadence == "A" else 1,
            planned_at=START - 29 * DAY - HOUR,
            sent_at=START - 29 * DAY - HOUR,
            updated_at=START - 29 * DAY - HOUR,
        )
        for cart in RecoveryCart.objects.filter(checkout_token__startswith=f"{prefix}-")
    )


SUBJECTS = "1: Forgot something?\n1: Still there?\n2: Still thinking?\n3: Last call"


def test_a_proven_winner_is_decided_off_the_dispatcher_and_given_to_carts_that_come_after(
    channel, experiment, monkeypatch
):
    settings = experiment(auto_winner="true", winner_min_recipients="200", subjects=SUBJECTS)
    # given B (cadence, and step 1 subject variant B) converted 80 of 400 carts, A 20 of 400, and
    # carts that were already there before any decision
    seed_results(settings, conversions={"A": 20, "B": 80})
    before = carts_left_at_start(channel, settings, 20, at=START - 2 * HOUR)
    # when the periodic task decides
    decided = rollup(START - HOUR, DbShop().channel_settings)
    # then both arm sets have a winner, recorded with its evidence
    assert sorted(decided) == [
        f"main {settings.experiments.version} cadence: B",
        f"main {settings.experiments.version} subject:1: 1",
    ]
    # (on the carts whose follow-up ended: the 20 carts of two hours ago are still in theirs)
    cadence = RecoveryWinner.objects.get(arm_set="cadence")
    assert cadence.evidence["arms"] == {
        "A": {"converted": 20, "carts": 400},
        "B": {"converted": 80, "carts": 400},
    }
    assert cadence.evidence["p_values"]["A"] < 0.05
    # and deciding again changes nothing (a decision is final)
    assert rollup(START, DbShop().channel_settings) == []

    # when new carts arrive, and the dispatcher runs without ever building a report
    new = carts_left_at_start(channel, settings, 20)
    monkeypatch.setattr("saleor_cart_recovery.experiments.rollup.build_report", None)
    dispatch(now=START + 12 * HOUR, send=lambda message_ids: None)
    # then every new cart runs cadence B (from its first activity) and gets subject B for step 1
    fresh = RecoveryCart.objects.filter(checkout_token__in=[c.token for c in new])
    assert {c.cadence for c in fresh} == {"B"}
    assert set(RecoveryMessage.objects.filter(cart__in=fresh).values_list("variant", flat=True)) == {1}
    # while the carts that were there before keep the arms they were assigned (intent to treat)
    old = RecoveryCart.objects.filter(checkout_token__in=[c.token for c in before])
    assert {c.cadence for c in old} == {"A", "B"}
    assert set(RecoveryMessage.objects.filter(cart__in=old).values_list("variant", flat=True)) == {0, 1}


def test_the_report_compares_only_carts_assigned_before_the_decision(channel, experiment):
    settings = experiment(auto_winner="true", winner_min_recipients="200", subjects=SUBJECTS)
    seed_results(settings, conversions={"A": 20, "B": 80})
    rollup(START - HOUR, DbShop().channel_settings)
    carts_left_at_start(channel, settings, 5)
    [report] = build_report(settings_for=DbShop().channel_settings)
    # the arms are the seeded carts only; the five later carts are shown apart, under the winner
    assert [(arm.label, arm.carts, arm.converted) for arm in report.cadences.arms] == [
        ("A", 400, 20),
        ("B", 400, 80),
    ]
    assert (report.cadences.decided, report.cadences.after_decision.carts) == ("B", 5)
    assert report.cadences.arms[1].winner and report.cadences.arms[0].p_value < 0.05


def test_no_decision_without_enough_carts_or_proof_or_when_switched_off(channel, experiment):
    # too few carts per arm for any verdict
    settings = experiment(auto_winner="true", winner_min_recipients="401")
    seed_results(settings, conversions={"A": 20, "B": 80})
    assert rollup(START, DbShop().channel_settings) == []
    # enough carts, but no proof: 22 against 20 of 400
    settings = experiment(auto_winner="true", winner_min_recipients="200", subjects=SUBJECTS)
    seed_results(settings, conversions={"A": 20, "B": 22}, prefix="close")
    assert rollup(START, DbShop().channel_settings) == []
    # proof, but the owner did not switch the automatic winner on
    settings = experiment(
        auto_winner="false", winner_min_recipients="200", subjects="1: One\n1: Two\n2: Three\n3: Four"
    )
    seed_results(settings, conversions={"A": 20, "B": 80}, prefix="off")
    assert rollup(START, DbShop().channel_settings) == []
    new = carts_left_at_start(channel, settings, 30)
    assert {c.cadence for c in RecoveryCart.objects.filter(checkout_token__in=[c.token for c in new])} == {
        "A",
        "B",
    }
    assert not RecoveryWinner.objects.exists()


def test_switching_the_automatic_winner_off_stops_giving_out_a_decided_winner(channel, experiment):
    settings = experiment(auto_winner="true", winner_min_recipients="200", subjects=SUBJECTS)
    seed_results(settings, conversions={"A": 20, "B": 80})
    rollup(START - HOUR, DbShop().channel_settings)
    # when the owner switches it off (the experiment version stays: the arms did not change)
    settings = experiment(auto_winner="false", winner_min_recipients="200", subjects=SUBJECTS)
    assert RecoveryWinner.objects.filter(experiment=settings.experiments.version).count() == 2
    new = carts_left_at_start(channel, settings, 30)
    dispatch(now=START + 12 * HOUR, send=lambda message_ids: None)
    # then new carts are drawn again, cadence and subject alike
    fresh = RecoveryCart.objects.filter(checkout_token__in=[c.token for c in new])
    assert {c.cadence for c in fresh} == {"A", "B"}
    assert set(RecoveryMessage.objects.filter(cart__in=fresh).values_list("variant", flat=True)) == {0, 1}
