"""Forgetting: a shopper's erasure keeps only the opt-out (as a keyed hash), and the daily cleanup
deletes what is older than the channel's retention and the coupons that expired unused."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import translation
from django_celery_beat.models import PeriodicTask
from freezegun import freeze_time

from saleor_cart_recovery.models import RecoveryCart, RecoveryMessage, Suppression
from saleor_cart_recovery.series.dispatch import dispatch
from saleor_cart_recovery.series.retention import Cleaned, Erased, cleanup, erase_address
from saleor_cart_recovery.series.suppression import suppress, suppression_reason
from saleor_cart_recovery.shop import settings_or_none
from tests.shopapp.models import ShopChannel, ShopVoucher
from tests.shopapp.shop import DbShop

from .conftest import CONFIGURATION, START, make_checkout, touch

HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def test_erasure_deletes_the_shoppers_carts_and_keeps_the_opt_out_unreadable(channel, recovery_settings):
    # given a shopper with two carts (one reminded) who unsubscribed, and another shopper
    for checkout in (make_checkout(channel), make_checkout(channel, email="Shopper@Example.com")):
        touch(checkout, START, recovery_settings)
    other = make_checkout(channel, email="other@example.com")
    touch(other, START, recovery_settings)
    with freeze_time(START + HOUR):
        call_command("cart_recovery_dispatch", stdout=StringIO())
    suppress("main", "shopper@example.com", source="link")
    # when the shopper's data is erased
    erased = erase_address("SHOPPER@example.com")
    # then nothing of theirs is readable any more, the other shopper is untouched ...
    assert (erased.carts, erased.messages, erased.suppressions_kept) == (2, 2, 1)
    assert list(RecoveryCart.objects.values_list("email", flat=True)) == ["other@example.com"]
    assert not RecoveryMessage.objects.filter(recipient="shopper@example.com").exists()
    [row] = Suppression.objects.all()
    assert row.email.startswith("hmac:") and "shopper" not in row.email
    # ... and the opt-out still holds: a new cart of the address gets nothing
    assert suppression_reason("main", "shopper@example.com") == "unsubscribed"
    again = make_checkout(channel)
    touch(again, START + 2 * DAY, recovery_settings)
    mail.outbox.clear()
    with freeze_time(START + 2 * DAY + HOUR):
        call_command("cart_recovery_dispatch", stdout=StringIO())
    assert [email.to for email in mail.outbox] == [["other@example.com"]]
    assert RecoveryMessage.objects.get(cart__checkout_token=again.token).reason == "unsubscribed"
    # and erasing again changes nothing
    assert str(erase_address("shopper@example.com")).startswith("erased 1 cart and")
    assert Suppression.objects.count() == 1


def test_erasure_finds_the_address_in_every_channel_even_one_where_it_has_no_cart(channel, recovery_settings):
    checkout = make_checkout(channel)
    touch(checkout, START, recovery_settings)
    ShopChannel.objects.create(slug="other", configuration=CONFIGURATION)
    suppress("other", "shopper@example.com", source="api")  # opted out where it never had a cart

    erased = erase_address("Shopper@Example.com")

    assert (erased.carts, erased.suppressions_kept) == (1, 1)
    assert not RecoveryCart.objects.exists()
    assert suppression_reason("other", "shopper@example.com") == "unsubscribed"
    assert not Suppression.objects.filter(email__contains="shopper").exists()


def test_erase_command_for_a_guests_request(channel, recovery_settings):
    touch(make_checkout(channel), START, recovery_settings)
    out = StringIO()
    call_command("cart_recovery_cleanup", erase="shopper@example.com", stdout=out)
    assert "erased 1 cart and" in out.getvalue() and not RecoveryCart.objects.exists()
    with pytest.raises(CommandError, match="not an email address"):
        call_command("cart_recovery_cleanup", erase="nobody")


def test_cleanup_deletes_what_is_older_than_the_channels_retention(channel, recovery_settings):
    # given a 30-day retention in this channel and carts of several ages
    channel.configuration = [*CONFIGURATION, {"name": "retention", "value": "30d"}]
    channel.save()
    old, recent, live = make_checkout(channel), make_checkout(channel), make_checkout(channel)
    touch(live, START, recovery_settings)
    with freeze_time(START + HOUR):
        dispatch(send=lambda ids: None)  # the live cart's step 1 waits to be sent
    touch(old, START, recovery_settings)
    RecoveryCart.objects.filter(checkout_token=old.token).update(status="finished", next_due_at=None)
    touch(recent, START + 20 * DAY, recovery_settings)
    RecoveryCart.objects.filter(checkout_token=recent.token).update(status="finished", next_due_at=None)
    # when the cleanup runs 31 days after the start
    with freeze_time(START + 31 * DAY):
        result = cleanup(START + 31 * DAY, settings_or_none, DbShop(), batch_size=1)
    # then only the old, finished cart is gone; the one with a message still to send stays
    remaining = set(RecoveryCart.objects.values_list("checkout_token", flat=True))
    assert remaining == {recent.token, live.token}
    assert (result.carts, result.finished) == (1, True)


def test_cleanup_uses_the_default_retention_where_the_plugin_is_off(db, recovery_settings):
    off = ShopChannel.objects.create(slug="off", active=False, configuration=CONFIGURATION)
    checkout = make_checkout(off)
    touch(checkout, START, recovery_settings)
    RecoveryCart.objects.update(status="finished", next_due_at=None)
    cleanup(START + 300 * DAY, settings_or_none, DbShop())
    assert RecoveryCart.objects.count() == 1
    cleanup(START + 366 * DAY, settings_or_none, DbShop())
    assert RecoveryCart.objects.count() == 0


def test_cleanup_deletes_only_vouchers_that_expired_unused(channel):
    def voucher(code, expires_at, used=0):
        ShopVoucher.objects.create(
            code=code,
            channel=channel,
            name="Cart recovery",
            discount_type="percentage",
            value=10,
            currency="USD",
            usage_limit=1,
            used=used,
            expires_at=expires_at,
        )

    voucher("EXPIRED", START - HOUR)
    voucher("USED", START - HOUR, used=1)
    voucher("VALID", START + HOUR)
    out = StringIO()
    with freeze_time(START):
        call_command("cart_recovery_cleanup", stdout=out)
    assert set(ShopVoucher.objects.values_list("code", flat=True)) == {"USED", "VALID"}
    assert "1 expired unused voucher\n" in out.getvalue()


def test_cleanup_runs_daily_with_beat(db):
    entry = PeriodicTask.objects.get(name="saleor_cart_recovery.cleanup")
    assert (entry.task, entry.interval.every, entry.interval.period, entry.enabled) == (
        "saleor_cart_recovery.cleanup",
        86400,
        "seconds",
        True,
    )


@pytest.mark.parametrize(
    ("language", "erased", "cleaned", "stopped"),
    [
        (
            "en",
            "erased 1 cart and 2 messages; kept 1 suppression as a keyed hash",
            "deleted 2 carts past retention and 1 expired unused voucher",
            "deleted 2 carts past retention and 1 expired unused voucher (stopped at the time budget; "
            "the next run goes on)",
        ),
        (
            "de",
            "1 Warenkorb und 2 Nachrichten gelöscht; 1 Sperre als schlüsselbasierter Hash (HMAC) behalten",
            "2 Warenkörbe nach Ablauf der Aufbewahrung und 1 ungenutzt abgelaufener Gutschein gelöscht",
            "2 Warenkörbe nach Ablauf der Aufbewahrung und 1 ungenutzt abgelaufener Gutschein gelöscht "
            "(am Zeitlimit angehalten; der nächste Lauf macht weiter)",
        ),
        (
            "tr",
            "1 sepet ve 2 ileti silindi; anahtarlı özet olarak 1 engelleme saklandı",
            "saklama süresi dolmuş 2 sepet ve kullanılmadan süresi dolmuş 1 kupon silindi",
            "saklama süresi dolmuş 2 sepet ve kullanılmadan süresi dolmuş 1 kupon silindi "
            "(süre sınırında durdu; sonraki çalışma devam eder)",
        ),
    ],
)
def test_erasure_and_cleanup_say_each_result_in_one_sentence_of_the_language(
    language, erased, cleaned, stopped
):
    # the counts are phrases placed into one sentence, so the verb sits where the language puts it
    with translation.override(language):
        assert str(Erased(1, 2, 1)) == erased
        assert str(Cleaned(2, 1)) == cleaned
        assert str(Cleaned(2, 1, finished=False)) == stopped
