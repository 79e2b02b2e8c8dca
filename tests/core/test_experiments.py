"""Experiment settings, cadence assignment and cadence timing (pure; no database)."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st

from saleor_cart_recovery.exceptions import ConfigurationError
from saleor_cart_recovery.experiments.assignment import pick_cadence, pick_subject
from saleor_cart_recovery.experiments.winners import Decision
from saleor_cart_recovery.series.decisions import next_due
from saleor_cart_recovery.settings.channel import RecoverySettings
from saleor_cart_recovery.settings.registry import DEFAULTS as DEFAULT_VALUES

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
CADENCES = "A: 1h, 1d, 3d | B: 12h, 2d, 8d"


def parse(**values) -> RecoverySettings:
    return RecoverySettings.from_plugin_configuration(
        [{"name": name, "value": value} for name, value in {**DEFAULT_VALUES, **values}.items()]
    )


def errors(**values) -> dict[str, str]:
    with pytest.raises(ConfigurationError) as caught:
        parse(**values)
    return caught.value.errors


def test_defaults_test_nothing_and_attribute_for_seven_days():
    experiments = parse().experiments
    assert experiments.cadences == ()
    assert experiments.attribution_window == 7 * DAY
    assert (experiments.auto_winner, experiments.winner_min_recipients) == (False, 200)


def test_cadences_are_parsed_with_their_labels():
    experiments = parse(cadences=CADENCES).experiments
    assert [(c.label, c.schedule) for c in experiments.cadences] == [
        ("A", (HOUR, DAY, 3 * DAY)),
        ("B", (12 * HOUR, 2 * DAY, 8 * DAY)),
    ]
    # newlines separate cadences as well as "|"
    assert parse(cadences="A: 1h, 1d, 3d\nB: 12h, 2d, 8d").experiments.cadences == experiments.cadences


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("A: 1h, 1d, 3d", "at least two cadences"),
        ("A: 1h, 1d | B: 2h, 2d", "has 2 steps but the schedule has 3"),
        ("A: 1h, 1d, 3d | B: 2d, 1d, 3d", "cadence B: delays must grow"),
        ("A: 1h, 1d, 3d | A: 2h, 2d, 4d", "label A is used twice"),
        ("A 1h, 1d, 3d | B: 2h, 2d, 4d", "must look like 'A: 1h, 1d, 3d'"),
        ("A: 1h, 1x, 3d | B: 2h, 2d, 4d", "cadence A: '1x' is not a duration"),
    ],
    ids=[
        "single_case",
        "step_count_case",
        "not_growing_case",
        "duplicate_case",
        "no_colon_case",
        "unit_case",
    ],
)
def test_bad_cadences_are_rejected_with_a_message(value, message):
    assert message in errors(cadences=value)["cadences"]


def test_each_bad_experiment_field_gets_its_own_message():
    found = errors(attribution_window="5m", auto_winner="maybe", winner_min_recipients="many")
    assert found == {
        "attribution_window": "must be between 1h and 90d. For example 7d.",
        "auto_winner": "'maybe' is not true or false",
        "winner_min_recipients": "'many' is not a whole number from 10 to 1000000 (recipients per variant)",
    }
    with translation.override("de"):  # the bounds and the example are two whole sentences
        assert errors(attribution_window="5m")["attribution_window"] == (
            "muss zwischen 1h und 90d liegen. Zum Beispiel 7d."
        )


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("True", True), (True, True), ("false", False), ("", False), (False, False)],
    ids=[
        "text_true_case",
        "python_str_case",
        "bool_true_case",
        "text_false_case",
        "unset_case",
        "bool_false_case",
    ],
)
def test_dashboard_booleans(value, expected):
    assert parse(auto_winner=value).experiments.auto_winner is expected


def test_changing_what_the_arms_get_starts_a_new_experiment_version():
    base = parse().experiments.version
    assert base == parse().experiments.version
    assert len(base) == 12
    changed = {
        parse(
            subjects=DEFAULT_VALUES["subjects"] + "\n1: Still there?\n1 [tr]: Hâlâ orada mısınız?"
        ).experiments.version,
        parse(cadences=CADENCES).experiments.version,
        parse(holdout_percent="10").experiments.version,
        parse(schedule="2h, 1d, 3d").experiments.version,
    }
    assert base not in changed and len(changed) == 4
    # settings that change no arm keep the version
    assert parse(attribution_window="3d", from_email="a@example.com").experiments.version == base


def test_a_carts_cadence_schedule_times_its_steps():
    recovery = parse(cadences=CADENCES)
    assert next_due(recovery, last_activity_at=T0, steps_planned=0, last_planned_at=None, cadence="B") == (
        T0 + 12 * HOUR
    )
    assert next_due(recovery, last_activity_at=T0, steps_planned=0, last_planned_at=None, cadence="A") == (
        T0 + HOUR
    )
    # step 3 of B, dispatched late: the gap between B's steps 2 and 3 (6 days) is kept
    late = T0 + 3 * DAY
    assert next_due(recovery, last_activity_at=T0, steps_planned=2, last_planned_at=late, cadence="B") == (
        late + 6 * DAY
    )
    # the cart is woken at the soonest first step of any cadence
    assert recovery.earliest_first_delay() == HOUR


@settings(max_examples=200)
@given(st.uuids())
def test_cadence_assignment_is_stable_per_cart(token):
    recovery = parse(cadences=CADENCES)
    first = pick_cadence(str(token), recovery)
    assert first in ("A", "B")
    assert all(pick_cadence(str(token), recovery) == first for _ in range(3))


@settings(max_examples=10, deadline=None)
@given(st.integers(min_value=2, max_value=5))
def test_cadence_split_is_close_to_equal_shares(arms):
    cadences = " | ".join(f"C{n}: {n + 1}h, {n + 2}d, {n + 4}d" for n in range(arms))
    recovery = parse(cadences=cadences)
    tokens = 12_000
    counts = Counter(pick_cadence(f"token-{n}", recovery) for n in range(tokens))
    assert set(counts) == {f"C{n}" for n in range(arms)}
    expected = tokens / arms
    # 4 standard deviations of a binomial count
    tolerance = 4 * (tokens * (1 / arms) * (1 - 1 / arms)) ** 0.5
    assert all(abs(count - expected) < tolerance for count in counts.values()), counts


def test_a_new_experiment_version_reshuffles_the_cadences():
    first = parse(cadences=CADENCES)
    second = parse(cadences=CADENCES, holdout_percent="5")
    tokens = [f"token-{n}" for n in range(400)]
    assert [pick_cadence(t, first) for t in tokens] != [pick_cadence(t, second) for t in tokens]
    assert pick_cadence("any", parse()) == ""


def test_a_decided_subject_goes_to_carts_first_seen_after_the_decision_only():
    decision = Decision("1", T0)
    tokens = [f"token-{n}" for n in range(200)]
    own = [pick_subject(t, 1, 2, T0 - HOUR, None) for t in tokens]
    assert set(own) == {0, 1}
    # carts first seen before the decision keep their own draw (intent to treat)
    assert [pick_subject(t, 1, 2, T0 - HOUR, decision) for t in tokens] == own
    # from the decision on, every new cart gets the winner
    assert {pick_subject(t, 1, 2, T0, decision) for t in tokens} == {1}
    # a decision for a variant the step no longer has is ignored
    assert [pick_subject(t, 1, 1, T0, decision) for t in tokens] == [0] * 200
