from datetime import UTC, datetime, timedelta

import pytest

from saleor_cart_recovery.exceptions import ConfigurationError
from saleor_cart_recovery.series.decisions import next_due
from saleor_cart_recovery.settings.channel import (
    RecoverySettings,
    validate_for_activation,
)
from saleor_cart_recovery.settings.formats import parse_smtp_url
from saleor_cart_recovery.settings.parsers import format_duration, parse_duration
from saleor_cart_recovery.settings.registry import DEFAULTS as DEFAULT_VALUES
from saleor_cart_recovery.settings.validation import validate_configuration

SECOND, YEAR = timedelta(seconds=1), timedelta(days=365)


def config(**values):
    return [{"name": name, "value": value} for name, value in {**DEFAULT_VALUES, **values}.items()]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("2d", timedelta(days=2)),
        (" 3H ", timedelta(hours=3)),
    ],
    ids=["seconds_case", "minutes_case", "hours_case", "days_case", "spaces_and_case_case"],
)
def test_parse_duration(text, expected):
    assert parse_duration(text, minimum=SECOND, maximum=YEAR) == expected
    assert parse_duration(format_duration(expected), minimum=SECOND, maximum=YEAR) == expected


@pytest.mark.parametrize("text", ["", "1", "h", "1w", "-1h", "0m", "1.5h"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        parse_duration(text, minimum=SECOND, maximum=YEAR)


@pytest.mark.parametrize(
    "text",
    ["366d", "99999999999d", "9" * 40 + "s", "0s"],
    ids=["just_over_case", "overflowing_days_case", "forty_digits_case", "zero_case"],
)
def test_parse_duration_stays_within_its_bounds(text):
    # a duration past the maximum is refused before any date arithmetic could overflow
    with pytest.raises(ValueError, match="between 1s and 365d|longer than zero"):
        parse_duration(text, minimum=SECOND, maximum=YEAR)


def test_defaults_parse_into_three_steps():
    settings = RecoverySettings.from_plugin_configuration([])
    assert settings.schedule == (timedelta(hours=1), timedelta(days=1), timedelta(days=3))
    assert settings.cutoff == timedelta(minutes=30)
    assert settings.subject_variants(1, "en") == ("Forgot something?",)
    assert settings.subject_variants(1, "tr-TR") == ("Bir şey mi unuttunuz?",)
    assert settings.smtp is None


def test_defaults_are_not_enough_to_activate():
    with pytest.raises(ConfigurationError) as error:
        validate_for_activation(RecoverySettings.from_plugin_configuration([]))
    assert set(error.value.errors) == {"storefront_url"}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("schedule", "1x", "'1x' is not a duration"),
        ("schedule", "1d, 1h", "delays must grow"),
        ("schedule", "", "at least one delay"),
        ("schedule", ", ".join(f"{n}h" for n in range(1, 12)), "at most 10 steps"),
        ("cutoff", "", "is not a duration"),
        ("subjects", "Forgot something?", "must look like '1: Forgot something?'"),
        ("subjects", "1: A\n2: B\n3: C\n4: D", "step 4 has a subject but the schedule has only 3"),
        ("subjects", "1: A\n3: C", "step 2 has no subject line"),
        ("subjects", "1: A\n4: D\n5: E", "steps 4, 5 have a subject but the schedule has only 3 steps"),
        ("subjects", "0: A", "numbered from 1"),
        ("storefront_url", "https://shop.example.com/cart", "must contain {token}"),
        ("storefront_url", "ftp://shop/{token}", "is not an http(s) URL"),
        ("storefront_url", "https://shop/{token}/{id}", "only the placeholders {token} and {checkout_id}"),
        ("from_email", "not an address", "is not one email address"),
        ("from_email", "Shop\nBcc: x@evil.example <shop@example.com>", "must be one line"),
        ("from_email", "Shop <a@example.com>, b@example.com", "is not one email address"),
        ("from_email", "Shop <a@example.com> trailing", "is not one email address"),
        ("smtp_url", "http://mail.example.com", "must start with smtp://"),
        ("smtp_url", "smtp://mail.example.com:99999", "invalid port"),
        ("smtp_url", "smtp://mail.example.com?tls=yes", "must be true or false"),
        ("smtp_url", "smtps://mail.example.com?tls=true", "not both"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 20 else None,
)
def test_invalid_values_are_rejected_naming_the_field(field, value, message):
    with pytest.raises(ConfigurationError) as error:
        RecoverySettings.from_plugin_configuration(config(**{field: value}))
    assert list(error.value.errors) == [field]
    assert message in error.value.errors[field]


def test_every_bad_field_is_reported_at_once():
    with pytest.raises(ConfigurationError) as error:
        RecoverySettings.from_plugin_configuration(config(schedule="soon", cutoff="never", smtp_url="x"))
    assert set(error.value.errors) == {"schedule", "cutoff", "smtp_url"}


def test_smtp_url_parts():
    smtp = parse_smtp_url("smtp://user%40shop:p%3Ass@mail.example.com:587?tls=true")
    assert (smtp.host, smtp.port, smtp.username, smtp.password, smtp.use_tls, smtp.use_ssl) == (
        "mail.example.com",
        587,
        "user@shop",
        "p:ss",
        True,
        False,
    )
    assert parse_smtp_url("smtps://mail.example.com").port == 465
    assert parse_smtp_url("") is None


def test_subject_variants_by_language():
    settings = RecoverySettings.from_plugin_configuration(
        config(subjects="1: A\n1: B\n2: C\n3: D\n1 [tr]: TrA\n1 [tr]: TrB\n1 [pt-BR]: BrA\n1 [pt-BR]: BrB")
    )
    assert settings.subject_variants(1, "en") == ("A", "B")
    assert settings.subject_variants(1, "tr") == ("TrA", "TrB")
    assert settings.subject_variants(1, "pt_BR") == ("BrA", "BrB")
    assert settings.subject_variants(1, "pt-PT") == ("A", "B")
    assert settings.subject_variants(2, "tr") == ("C",)


@pytest.mark.parametrize(
    "subjects",
    ["1: A\n1: B\n2: C\n3: D\n1 [tr]: Tr", "1: A\n2: C\n3: D\n1 [tr]: X\n1 [tr]: Y"],
    ids=["fewer_in_a_language_case", "more_in_a_language_case"],
)
def test_a_language_with_another_number_of_variants_is_rejected_on_save(subjects):
    # a variant is one arm in every language: with 'A', 'B' and one Turkish line, every Turkish
    # cart would be counted as A whichever line it got
    settings = RecoverySettings.from_plugin_configuration(config(subjects=subjects))
    with pytest.raises(ConfigurationError) as caught:
        validate_configuration({**DEFAULT_VALUES, "subjects": subjects}, active=False)
    message = caught.value.errors["subjects"]
    assert "step 1 has" in message and "[tr]" in message and "the n-th line is variant n" in message
    # settings stored by an earlier version still work: Turkish carts read the untagged lines, so
    # variant n is the same arm for every cart
    assert settings.subject_variants(1, "tr") == settings.subject_variants(1, "en")


def test_delay_never_shorter_than_cutoff():
    settings = RecoverySettings.from_plugin_configuration(
        config(schedule="10m, 2h", cutoff="30m", subjects="1: A\n2: B")
    )
    start = datetime(2026, 1, 1, tzinfo=UTC)
    first = next_due(settings, last_activity_at=start, steps_planned=0, last_planned_at=None)
    second = next_due(settings, last_activity_at=start, steps_planned=1, last_planned_at=None)
    assert first - start == timedelta(minutes=30)
    assert second - start == timedelta(hours=2)


def test_recovery_url_has_the_token():
    settings = RecoverySettings.from_plugin_configuration(
        config(storefront_url="https://s.example/c/{token}?r=1")
    )
    assert settings.recovery_url("abc") == "https://s.example/c/abc?r=1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", "0"), ("10", "10"), ("12.5 %", "12.5"), ("", "0"), ("50", "50")],
    ids=["zero_case", "ten_case", "decimal_percent_sign_case", "empty_case", "maximum_case"],
)
def test_holdout_percent(text, expected):
    settings = RecoverySettings.from_plugin_configuration(config(holdout_percent=text))
    assert str(settings.holdout_percent) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ten", "is not a number"),
        ("-1", "between 0 and 50"),
        ("51", "between 0 and 50"),
        ("NaN", "between 0 and 50"),
        ("1.234", "two decimals"),
    ],
)
def test_holdout_percent_rejects(text, message):
    with pytest.raises(ConfigurationError) as error:
        RecoverySettings.from_plugin_configuration(config(holdout_percent=text))
    assert message in error.value.errors["holdout_percent"]
