"""Shared setup for the benchmark scripts: Django on tests.settings against a database of its own.

Import this module before anything from Django or the package: it points the settings at
``CART_RECOVERY_DB_NAME`` (default ``cart_recovery_bench``), creates that database when it is
missing and migrates it.
"""

import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CART_RECOVERY_DB_NAME", "cart_recovery_bench")
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"

import django  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402


def _ensure_database() -> None:
    name = os.environ["CART_RECOVERY_DB_NAME"]
    with psycopg.connect(
        host=os.environ.get("CART_RECOVERY_DB_HOST", "127.0.0.1"),
        port=os.environ.get("CART_RECOVERY_DB_PORT", "5432"),
        user=os.environ.get("CART_RECOVERY_DB_USER", "postgres"),
        password=os.environ.get("CART_RECOVERY_DB_PASSWORD", ""),
        dbname="postgres",
        autocommit=True,
    ) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


_ensure_database()
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

call_command("migrate", verbosity=0)

CONFIGURATION = [
    {"name": "schedule", "value": "1h, 1d, 3d"},
    {"name": "cutoff", "value": "30m"},
    {"name": "subjects", "value": "1: Forgot something?\n2: Still thinking?\n3: Last call"},
    {"name": "storefront_url", "value": "https://shop.example.com/cart/{token}"},
    {"name": "from_email", "value": "Shop <shop@example.com>"},
]
CHANNEL = "bench"


def reset_tables() -> None:
    from tests.shopapp.models import ShopChannel

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE cart_recovery_message, cart_recovery_cart, cart_recovery_suppression CASCADE"
        )
    ShopChannel.objects.update_or_create(
        slug=CHANNEL, defaults={"configuration": CONFIGURATION, "active": True}
    )


def add_idle_carts(count: int, *, now, start: int = 0) -> None:
    """Insert ``count`` carts that are stored but not due, in one INSERT … SELECT generate_series.

    A realistic mix: a third wait for a later step (``next_due_at`` in the next 3 days), a third
    finished their series, a third converted (both with ``next_due_at`` NULL, outside the partial
    index). Each has its planned steps stored as sent messages (one, or three), so the message
    table holds the history a live shop has.
    """
    if count <= 0:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO cart_recovery_cart (checkout_token, channel_slug, email, language_code, status,
                stop_reason, last_activity_at, steps_planned, last_planned_at, next_due_at,
                order_id, order_number, order_currency, conversion_match, created_at, updated_at)
            SELECT 'idle-' || g, %(channel)s, 'shopper' || g || '@example.com', 'en',
                CASE g %% 3 WHEN 0 THEN 'active' WHEN 1 THEN 'finished' ELSE 'converted' END,
                CASE g %% 3 WHEN 2 THEN 'purchased' ELSE '' END,
                %(now)s - (g %% 4320) * interval '1 minute',
                CASE g %% 3 WHEN 0 THEN 1 ELSE 3 END,
                %(now)s - (g %% 600) * interval '1 minute',
                CASE g %% 3 WHEN 0 THEN %(now)s + (1 + g %% 4320) * interval '1 minute' END,
                '', '', '', '', %(now)s, %(now)s
            FROM generate_series(%(first)s, %(last)s) AS g
            """,
            {"channel": CHANNEL, "now": now, "first": start + 1, "last": start + count},
        )
        cursor.execute(
            """
            INSERT INTO cart_recovery_message (cart_id, step, status, reason, variant, content,
                voucher_code, clicks, subject, recipient, attempts, error, planned_at, attempt_after,
                sent_at, updated_at)
            SELECT c.id, step, 'sent', '', 0, 'reminder', '', 0, 'Forgot something?', c.email, 1, '',
                c.last_planned_at, c.last_planned_at, c.last_planned_at, c.last_planned_at
            FROM generate_series(%(first)s, %(last)s) AS g
            JOIN cart_recovery_cart c ON c.checkout_token = 'idle-' || g,
            LATERAL generate_series(1, c.steps_planned) AS step
            """,
            {"first": start + 1, "last": start + count},
        )


def add_due_carts(count: int, now) -> list[str]:
    tokens = [f"due-{n}" for n in range(1, count + 1)]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO cart_recovery_cart (checkout_token, channel_slug, email, language_code, status,
                stop_reason, last_activity_at, steps_planned, next_due_at,
                order_id, order_number, order_currency, conversion_match, created_at, updated_at)
            SELECT 'due-' || g, %(channel)s, 'due' || g || '@example.com', 'en', 'active', '',
                %(now)s - interval '2 hours', 0, NULL, '', '', '', '', %(now)s, %(now)s
            FROM generate_series(1, %(count)s) AS g
            """,
            {"channel": CHANNEL, "now": now, "count": count},
        )
    return tokens


def make_due(tokens: list[str], now) -> None:
    """Put the due carts back to 'step 1 due' and drop the messages a previous cycle planned for
    them (the idle carts' history stays).

    Their due times are spread a millisecond apart within the last hour (up to 3.6 million carts)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            DELETE FROM cart_recovery_message
            WHERE cart_id IN (SELECT id FROM cart_recovery_cart WHERE checkout_token = ANY(%(tokens)s))
            """,
            {"tokens": tokens},
        )
        cursor.execute(
            """
            UPDATE cart_recovery_cart
            SET status = 'active', steps_planned = 0, last_planned_at = NULL,
                next_due_at = %(now)s - interval '1 hour'
                    + substr(checkout_token, 5)::int * interval '1 millisecond'
            WHERE checkout_token = ANY(%(tokens)s)
            """,
            {"now": now, "tokens": tokens},
        )


def analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE cart_recovery_cart")
        cursor.execute("ANALYZE cart_recovery_message")


def stored_carts() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM cart_recovery_cart")
        return cursor.fetchone()[0]


def mean_p95_ms(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * len(ordered))) - 1)]
    return statistics.fmean(ordered) / 1e6, p95 / 1e6
