"""The dispatcher with cadence variants and the automatic winner."""

from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache

from saleor_cart_recovery.models import RecoveryCart, RecoveryMessage
from saleor_cart_recovery.series.dispatch import dispatch
from saleor_cart_recovery.settings.channel import RecoverySettings

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


def carts_left_at_start(channel, settings, count):
    checkouts = [make_checkout(channel, email=f"s{n}@example.com") for n in range(count)]
    for checkout in checkouts:
        touch(checkout, START, settings)
    return checkouts


def test_each_cart_follows_its_own_cadence(channel, experiment):
    settings = experiment()
    carts_left_at_start(channel, settings, 40)
    # when the dispatcher runs at the soonest first step (1h, cadence A)
    dispatch(now=START + HOUR, send=lambda message_id: None)
    carts = list(RecoveryCart.objects.all())
    by_cadence = Counter(c.cadence for c in carts)
    # then every cart got a cadence, recorded, with both arms used
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


def seed_results(settings, *, cadence_conversions, subject_conversions, recipients=30, prefix="seed"):
    """Finished carts of the current version: per cadence / step-1 variant, `recipients` sent
    emails and the given number of orders an hour after the email."""
    version = settings.experiments.version
    n = 0
    for arm in ("A", "B"):
        for index in range(recipients):
            n += 1
            converted = index < cadence_conversions[arm] or index < subject_conversions[arm]
            cart = RecoveryCart.objects.create(
                checkout_token=f"{prefix}-{n}",
                channel_slug="main",
                email=f"{prefix}{n}@example.com",
                status="converted" if converted else "finished",
                experiment=version,
                cadence=arm,
                last_activity_at=START - 10 * DAY,
                created_at=START - 10 * DAY,
                updated_at=START - 10 * DAY,
                order_id=f"{prefix}-o{n}" if converted else "",
                order_total=Decimal("10.00") if converted else None,
                order_currency="USD" if converted else "",
                conversion_match="token" if converted else "",
                converted_at=START - 9 * DAY if converted else None,
            )
            RecoveryMessage.objects.create(
                cart=cart,
                step=1,
                status="sent",
                variant=0 if arm == "A" else 1,
                planned_at=START - 9 * DAY - HOUR,
                sent_at=START - 9 * DAY - HOUR,
                updated_at=START - 9 * DAY - HOUR,
            )


def test_automatic_winner_shifts_new_carts_once_clearly_best(channel, experiment):
    settings = experiment(
        auto_winner="true",
        winner_min_recipients="30",
        subjects="1: Forgot something?\n1: Still there?\n2: Still thinking?\n3: Last call",
    )
    # given B (cadence, and step 1 subject variant B) converted 15 of 30 recipients, A 2 of 30
    seed_results(settings, cadence_conversions={"A": 2, "B": 15}, subject_conversions={"A": 2, "B": 15})
    new = carts_left_at_start(channel, settings, 20)
    dispatch(now=START + 12 * HOUR, send=lambda message_id: None)
    # then every new cart runs cadence B and gets subject variant B (index 1) for step 1
    fresh = RecoveryCart.objects.filter(checkout_token__in=[c.token for c in new])
    assert {c.cadence for c in fresh} == {"B"}
    assert set(RecoveryMessage.objects.filter(cart__in=fresh).values_list("variant", flat=True)) == {1}


def test_no_shift_without_enough_recipients_or_when_switched_off(channel, experiment):
    settings = experiment(auto_winner="true", winner_min_recipients="31")
    seed_results(settings, cadence_conversions={"A": 2, "B": 15}, subject_conversions={"A": 0, "B": 0})
    new = carts_left_at_start(channel, settings, 30)
    dispatch(now=START + 12 * HOUR, send=lambda message_id: None)
    fresh = RecoveryCart.objects.filter(checkout_token__in=[c.token for c in new])
    assert {c.cadence for c in fresh} == {"A", "B"}  # 30 per arm < 31: still split by hash

    cache.clear()
    settings = experiment(auto_winner="false", winner_min_recipients="30")
    seed_results(
        settings, cadence_conversions={"A": 2, "B": 15}, subject_conversions={"A": 0, "B": 0}, prefix="more"
    )
    later = carts_left_at_start(channel, settings, 30)
    dispatch(now=START + 12 * HOUR, send=lambda message_id: None)
    assert {c.cadence for c in RecoveryCart.objects.filter(checkout_token__in=[c.token for c in later])} == {
        "A",
        "B",
    }
