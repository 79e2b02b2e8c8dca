"""A flash sale with real parts: 20,000 carts abandoned within one hour, all first reminders sent by
two Celery worker processes over a Redis broker to an SMTP server on loopback.

The hour is compressed 60×: the carts' first steps fall due spread evenly over 60 real seconds, and
the dispatcher runs every real second (one simulated minute, beat's resolution). Compressing the
clock does not compress the work, so mail is asked for at 333 emails/s, 60 times the rate of a
real hour of 20,000 abandoned carts: a harsh test of throughput and lateness, not a realistic one.

Lateness is when the mail server accepted a cart's reminder minus when it fell due, in real
seconds (with the dispatcher's one-second rhythm, about 0.5 s on average even for an idle system).
Speed is reported in the terminal summary ("flash-sale figures"), not asserted; what is asserted is
that every cart got its first reminder exactly once and every message is recorded sent.
"""

import statistics
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from saleor_cart_recovery.models import UNSENT, MessageStatus, RecoveryCart, RecoveryMessage
from saleor_cart_recovery.series.dispatch import dispatch
from saleor_cart_recovery.settings.channel import RecoverySettings
from saleor_cart_recovery.tasks import enqueue_send
from tests.shopapp.models import ShopChannel, ShopCheckout, ShopLine

from .conftest import with_smtp
from .realparts import (
    BROKER_URL,
    FLASH_SALE_FIGURES,
    launch_worker,
    redis_client,
    reset_broker_pool,
    use_broker,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)

CARTS = 20_000
SALE = timedelta(seconds=60)  # one simulated hour
# Time for the test to take the first steps after seeding before the first cart falls due.
LEAD = timedelta(seconds=5)
BEAT = 1.0  # seconds between dispatcher cycles: one simulated minute
WORKERS = 2
THREADS = 4  # per worker, as the chaos suite's workers
TIMEOUT = 600


@pytest.fixture
def channel(smtp_server):
    controller, _ = smtp_server
    return ShopChannel.objects.create(slug="flash", configuration=with_smtp(controller.port))


@pytest.fixture
def workers(settings, tmp_path):
    """Worker processes on a private, emptied Redis database; this process publishes to it."""
    client = redis_client()
    client.flushdb()
    use_broker(settings, BROKER_URL)
    started = []
    try:
        for n in range(WORKERS):
            started.append(
                launch_worker(
                    tmp_path / f"flash-{n}.log", broker_url=BROKER_URL, name=f"flash-{n}", concurrency=THREADS
                )
            )
        yield started
    finally:
        for worker in started:
            worker.stop()
        reset_broker_pool()
        client.flushdb()
        client.close()


def abandon(channel: ShopChannel) -> dict[str, float]:
    """Store ``CARTS`` one-line checkouts and their carts as the checkout hook would have, with first
    steps due evenly over ``SALE`` from ``LEAD`` on; returns each address's due time (epoch seconds).

    Three set-based INSERTs: 20,000 hook calls would take longer than the sale itself."""
    settings = RecoverySettings.from_plugin_configuration(channel.configuration)
    delay = settings.earliest_first_delay()
    params = {
        "count": CARTS,
        "channel_id": channel.pk,
        "channel": channel.slug,
        "first_due": timezone.now() + LEAD,
        "spacing": SALE / CARTS,
        "delay": delay,
        "experiment": settings.experiments.version,
    }
    checkouts, lines, carts = (
        ShopCheckout._meta.db_table,
        ShopLine._meta.db_table,
        RecoveryCart._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {checkouts} (token, channel_id, email, language_code, currency, metadata,
                account_metadata, first_name, country)
            SELECT 'flash-' || g, %(channel_id)s, 'shopper-' || g || '@example.com', 'en', 'USD', '{{}}',
                '{{}}', '', ''
            FROM generate_series(1, %(count)s) AS g
            """,
            params,
        )
        cursor.execute(
            f"""
            INSERT INTO {lines} (checkout_id, variant_id, product_name, variant_name, quantity,
                unit_price, image_url)
            SELECT id, '1', 'Blue Hoodie', 'XL', 1, 39.90, 'https://cdn.example.com/1.png'
            FROM {checkouts} WHERE channel_id = %(channel_id)s
            """,
            params,
        )
        cursor.execute(
            f"""
            INSERT INTO {carts} (checkout_token, channel_slug, email, language_code, status, experiment,
                last_activity_at, next_due_at, created_at, updated_at)
            SELECT 'flash-' || g, %(channel)s, 'shopper-' || g || '@example.com', 'en', 'active',
                %(experiment)s, due - %(delay)s, due, due - %(delay)s, due - %(delay)s
            FROM generate_series(1, %(count)s) AS g,
                LATERAL (SELECT %(first_due)s + (g - 1) * %(spacing)s AS due) AS d
            """,
            params,
        )
        # Fresh statistics, as autovacuum would have gathered over the hour.
        cursor.execute(f"ANALYZE {checkouts}, {lines}, {carts}")
    return {
        email: (last_activity_at + delay).timestamp()
        for email, last_activity_at in RecoveryCart.objects.values_list("email", "last_activity_at")
    }


def state() -> dict:
    return dict(Counter(RecoveryMessage.objects.values_list("step", "status")))


def run_beat(inbox, workers) -> list:
    """Run the dispatcher every ``BEAT`` seconds until every cart's reminder is in the inbox; returns
    each cycle's result and how long it took."""
    cycles = []
    deadline = time.monotonic() + TIMEOUT
    tick = time.monotonic()
    while len(inbox.received) < CARTS:
        for worker in workers:
            worker.check_alive()
        if time.monotonic() > deadline:
            logs = "\n".join(worker.output()[-4000:] for worker in workers)
            pytest.fail(
                f"the flash sale was not over after {TIMEOUT} s: {len(inbox.received)} of {CARTS} "
                f"reminders in the inbox; messages by (step, status): {state()}; last dispatch: "
                f"{cycles[-1][0] if cycles else None}; worker logs:\n{logs}"
            )
        started = time.monotonic()
        cycles.append((dispatch(send=enqueue_send), time.monotonic() - started))
        tick += BEAT
        time.sleep(max(0.0, tick - time.monotonic()))
    return cycles


def test_twenty_thousand_carts_abandoned_within_an_hour_compressed_sixty_times(workers, inbox, channel):
    due = abandon(channel)
    cycles = run_beat(inbox, workers)
    wait_until(
        lambda: not RecoveryMessage.objects.filter(status__in=UNSENT).exists(),
        "every sent message recorded",
        *workers,
        state=state,
    )
    received = inbox.received

    copies = Counter(r.rcpt_tos[0] for r in received)
    assert set(copies) == set(due), f"{len(set(due) - set(copies))} carts got no reminder"
    assert [address for address, count in copies.items() if count > 1] == []
    assert set(RecoveryMessage.objects.values_list("subject", flat=True)) == {"Forgot something?"}
    assert state() == {(1, MessageStatus.SENT.value): CARTS}

    lateness = sorted(r.accepted_at - due[r.rcpt_tos[0]] for r in received)
    first_due, first_in = min(due.values()), min(r.accepted_at for r in received)
    last_in = max(r.accepted_at for r in received)
    largest = max((result.backlog for result, _ in cycles), key=lambda b: b.due_unplanned + b.planned_unsent)
    sale = SALE.total_seconds()
    FLASH_SALE_FIGURES.extend(
        [
            f"{CARTS} carts due over {sale:.0f} s "
            f"({CARTS / sale:.0f}/s asked), "
            f"{WORKERS} workers x {THREADS} threads, dispatcher every {BEAT:.0f} s",
            f"every first reminder out {last_in - first_due:.1f} s after the first was due; "
            f"throughput {CARTS / (last_in - first_in):.0f} emails/s",
            f"lateness p50 {statistics.median(lateness):.1f} s, "
            f"p99 {statistics.quantiles(lateness, n=100)[98]:.1f} s, max {lateness[-1]:.1f} s",
            f"largest backlog: {largest.due_unplanned + largest.planned_unsent} ({largest}); "
            f"{len(cycles)} dispatcher cycles, slowest {max(took for _, took in cycles):.2f} s",
        ]
    )
