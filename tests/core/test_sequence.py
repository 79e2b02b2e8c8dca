import hashlib
import hmac
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from saleor_cart_recovery.experiments.assignment import in_holdout, pick_variant, shopper_bucket
from saleor_cart_recovery.series.decisions import accepts_activity, next_due, reason_not_to_send
from saleor_cart_recovery.settings.channel import RecoverySettings
from saleor_cart_recovery.shop import CartLine, CartSnapshot

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SETTINGS = RecoverySettings.from_plugin_configuration(
    [{"name": "schedule", "value": "1h, 1d, 3d"}, {"name": "cutoff", "value": "30m"}]
)
LINE = CartLine("1", "Hoodie", "XL", "H-XL", 1, Decimal("10"), Decimal("10"), None)


def snapshot(lines=(LINE,), email="a@example.com"):
    return CartSnapshot("t", "main", email, "en", "USD", lines, Decimal("10"), "Shop")


def test_first_step_due_after_its_delay():
    assert next_due(SETTINGS, last_activity_at=T0, steps_planned=0, last_planned_at=None) == T0 + timedelta(
        hours=1
    )


def test_later_steps_timed_from_last_activity():
    due = next_due(SETTINGS, last_activity_at=T0, steps_planned=1, last_planned_at=T0 + timedelta(hours=1))
    assert due == T0 + timedelta(days=1)


def test_late_dispatch_keeps_the_configured_gap_between_steps():
    late = T0 + timedelta(days=2)  # step 1 only went out two days late
    due = next_due(SETTINGS, last_activity_at=T0, steps_planned=1, last_planned_at=late)
    assert due == late + (timedelta(days=1) - timedelta(hours=1))


def test_activity_after_a_step_continues_with_the_next_step():
    back = T0 + timedelta(hours=5)
    due = next_due(SETTINGS, last_activity_at=back, steps_planned=1, last_planned_at=T0 + timedelta(hours=1))
    assert due == back + timedelta(days=1)


def test_no_step_after_the_last():
    assert next_due(SETTINGS, last_activity_at=T0, steps_planned=3, last_planned_at=T0) is None


def test_activity_reopens_only_soft_stops():
    assert accepts_activity("active", "")
    assert accepts_activity("stopped", "cart_empty")
    assert not accepts_activity("stopped", "unsubscribed")
    assert not accepts_activity("converted", "purchased")
    assert not accepts_activity("finished", "")


def test_reasons_not_to_send_in_priority_order():
    base = dict(
        unavailable=None,
        cart_status="active",
        cart_stop_reason="",
        ordered=False,
        suppression=None,
        snapshot=snapshot(),
    )
    assert reason_not_to_send(**base) is None
    assert reason_not_to_send(**{**base, "ordered": True, "snapshot": None}) == "purchased"
    assert reason_not_to_send(**{**base, "cart_status": "converted"}) == "purchased"
    assert (
        reason_not_to_send(**{**base, "cart_status": "stopped", "cart_stop_reason": "unsubscribed"})
        == "unsubscribed"
    )
    assert reason_not_to_send(**{**base, "unavailable": "plugin_inactive"}) == "plugin_inactive"
    assert reason_not_to_send(**{**base, "unavailable": "configuration_invalid"}) == "configuration_invalid"
    assert reason_not_to_send(**{**base, "cart_status": "finished"}) == "series_finished"
    assert reason_not_to_send(**{**base, "suppression": "unsubscribed"}) == "unsubscribed"
    assert reason_not_to_send(**{**base, "suppression": "bounced"}) == "bounced"
    assert reason_not_to_send(**{**base, "snapshot": None}) == "checkout_deleted"
    assert reason_not_to_send(**{**base, "snapshot": snapshot(lines=())}) == "cart_empty"
    assert reason_not_to_send(**{**base, "snapshot": snapshot(email="")}) == "no_email"


def reference_bucket(token: str, experiment: str, buckets: int) -> int:
    """The assignment as documented, computed here without the package: SHA-256 of
    ``experiment:token``, its first 8 bytes read big-endian, modulo the number of buckets."""
    digest = hashlib.sha256(f"{experiment}:{token}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % buckets


@given(st.uuids(), st.integers(min_value=1, max_value=6))
def test_variant_assignment_is_the_documented_hash(token, variants):
    # when a cart's variant is picked
    picked = pick_variant(str(token), "subject:1", variants)
    # then it is the stable hash computed independently, so it is in range and never changes
    assert picked == reference_bucket(str(token), "subject:1", variants)
    assert 0 <= picked < variants


@pytest.mark.parametrize(
    ("token", "experiment", "variants", "expected"),
    [
        ("token-0", "subject:1", 2, 1),
        ("token-0", "subject:1", 6, 5),
        ("token-3", "subject:1", 3, 2),
        ("token-4", "subject:1", 2, 1),
        ("token-3", "holdout", 10_000, 1852),
        ("token-0", "subject:1", 1, 0),
    ],
    ids=[
        "two_variants_case",
        "six_variants_case",
        "three_variants_case",
        "other_token_case",
        "holdout_bucket_case",
        "single_variant_case",
    ],
)
def test_variant_assignment_is_pinned_across_releases(token, experiment, variants, expected):
    # given known assignments: a changed hash would move carts of a running experiment between arms
    # then the cart lands in the variant it always had
    assert pick_variant(token, experiment, variants) == expected


def test_variant_assignment_splits_evenly():
    counts = Counter(pick_variant(f"token-{n}", "subject:1", 3) for n in range(30000))
    assert all(abs(count - 10000) < 400 for count in counts.values()), counts


@pytest.mark.parametrize("percent", ["0", "5", "10", "33.33", "50"])
def test_holdout_share_is_close_to_the_setting(percent):
    share = Decimal(percent) / 100
    held = sum(in_holdout("main", f"shopper-{n}@example.com", Decimal(percent)) for n in range(20000)) / 20000
    assert abs(held - float(share)) < 0.012


def reference_shopper_bucket(channel: str, email: str) -> int:
    """The holdout bucket as documented, computed here with the standard library: HMAC-SHA256
    keyed with SHA-256 of Django's salted-HMAC key derivation, its first 8 bytes big-endian."""
    key = hashlib.sha256(("saleor_cart_recovery.holdout" + settings.SECRET_KEY).encode()).digest()
    digest = hmac.new(key, f"{channel}\n{email}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def test_holdout_is_the_shoppers_keyed_bucket_below_the_percentage():
    # given 500 shoppers and a 10 % holdout
    emails = [f"s{n}@example.com" for n in range(500)]
    # then a shopper is held out exactly when the keyed bucket of channel and address is below 1000
    expected = [reference_shopper_bucket("main", email) < 1000 for email in emails]
    assert [in_holdout("main", email, Decimal("10")) for email in emails] == expected
    assert any(expected) and not all(expected)
    # and the bucket does not depend on the checkout, so every cart of the shopper is in the same
    # group; another channel draws its own
    assert shopper_bucket("main", "s1@example.com") == shopper_bucket("main", "s1@example.com")
    assert [shopper_bucket("other", e) for e in emails] != [shopper_bucket("main", e) for e in emails]
    # and raising the share only adds shoppers: whoever was held out at 10 % still is at 20 %
    at_20 = [in_holdout("main", email, Decimal("20")) for email in emails]
    assert all(at_20[n] for n, held in enumerate(expected) if held) and sum(at_20) > sum(expected)
    # and nobody is held out at 0 %
    assert not any(in_holdout("main", email, Decimal("0")) for email in emails)


def test_the_holdout_cannot_be_computed_from_the_address_without_the_secret_key():
    with override_settings(SECRET_KEY="another-shop"):
        other = [shopper_bucket("main", f"s{n}@example.com") for n in range(50)]
    assert other != [shopper_bucket("main", f"s{n}@example.com") for n in range(50)]
