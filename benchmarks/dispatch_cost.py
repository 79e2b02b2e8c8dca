"""Cost of one dispatch cycle with a fixed number of due carts while stored-but-not-due carts grow.

For each size it stores that many idle carts (waiting for a later step, finished or converted),
adds ``--due`` carts whose first step is due, runs ANALYZE, and then times ``--repeat`` dispatch
cycles (state reset in between, outside the timing) with a ``send`` callback that does nothing,
so only the dispatcher's own database work is measured. It prints wall time, queries per cycle
and the plan of the due-cart query, which should read the partial index ``cart_recovery_cart_due``
(Index Scan), not the table (Seq Scan).

    .venv/bin/python benchmarks/dispatch_cost.py [--due 100] [--repeat 10] [--sizes 0,10000,100000,500000]
"""

import argparse
import re
import statistics
import time
from datetime import UTC, datetime

import common  # noqa: F401  (sets up Django first)
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from saleor_cart_recovery.models import UNSENT
from saleor_cart_recovery.series.dispatch import _LOCK_DUE, BATCH_SIZE, dispatch


def due_params(now) -> dict:
    """The parameters the dispatcher runs its due-cart statement (``dispatch._LOCK_DUE``) with, as
    for a cycle's first batch."""
    return {
        "now": now,
        "after": datetime.min.replace(tzinfo=UTC),
        "limit": BATCH_SIZE,
        "waiting": list(UNSENT),
    }


def explain(now) -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")  # as the dispatcher's planning transaction does
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {_LOCK_DUE}", due_params(now))
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)  # EXPLAIN ANALYZE of FOR UPDATE took row locks
    return plan


def scan_kind(plan: str) -> str:
    """How the plan reads the cart table: 'Seq Scan' if anywhere, else the index scan node(s)."""
    nodes = []
    for line in plan.splitlines():
        text = line.strip().removeprefix("->").strip().split("  (")[0]
        if text.startswith("Seq Scan"):
            return text
        if "Index" in text and "Scan" in text:
            nodes.append(text)
    return "; ".join(nodes) or "?"


def execution_ms(plan: str) -> float:
    match = re.search(r"Execution Time: ([0-9.]+) ms", plan)
    return float(match.group(1)) if match else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--due", type=int, default=100, help="carts whose first step is due")
    parser.add_argument("--repeat", type=int, default=10, help="timed cycles per size")
    parser.add_argument("--sizes", default="0,10000,100000,500000", help="idle carts, comma separated")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    now = timezone.now()
    noop = lambda message_id: None  # noqa: E731

    print(
        f"dispatch(): {args.due} due carts, {args.repeat} timed cycles per size, send = no-op, "
        f"database {connection.settings_dict['NAME']}"
    )
    header = (
        f"{'idle carts':>10} | {'planned':>7} | {'enqueued':>8} | {'queries':>7} | "
        f"{'median ms':>9} | {'min ms':>7} | {'insert+analyze s':>16} | {'due query':>9} | "
        "due-cart query plan"
    )
    print(header)
    print("-" * (len(header) + 40))
    plans = {}
    common.reset_tables()
    tokens = common.add_due_carts(args.due, now)
    stored_idle = 0
    for size in sizes:
        started = time.perf_counter()
        common.add_idle_carts(size - stored_idle, now=now, start=stored_idle)
        stored_idle = size
        common.analyze()
        setup_s = time.perf_counter() - started

        common.make_due(tokens, now)
        plans[size] = explain(now)

        timings, results = [], []
        for repeat in range(args.repeat + 1):
            common.make_due(tokens, now)
            if repeat == 0:  # untimed: count queries (capturing adds overhead)
                with CaptureQueriesContext(connection) as queries:
                    dispatch(now=now, send=noop)
                continue
            started = time.perf_counter_ns()
            results.append(dispatch(now=now, send=noop))
            timings.append(time.perf_counter_ns() - started)
        last = results[-1]
        print(
            f"{size:>10,} | {last.planned:>7} | {len(last.enqueued):>8} | "
            f"{len(queries.captured_queries):>7} | "
            f"{statistics.median(timings) / 1e6:>9.1f} | {min(timings) / 1e6:>7.1f} | {setup_s:>16.1f} | "
            f"{execution_ms(plans[size]):>6.3f} ms | {scan_kind(plans[size])}"
        )

    largest = sizes[-1]
    print(f"\nEXPLAIN (ANALYZE, BUFFERS) of the due-cart query with {largest:,} idle carts:")
    print("  " + " ".join(_LOCK_DUE.split()), due_params(now))
    for line in plans[largest].splitlines():
        print("  " + line)
    # Not-due rows in the partial index, for reading the plan: NULL next_due_at rows are not in it.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE next_due_at IS NOT NULL), count(*) FROM cart_recovery_cart"
        )
        indexed, total = cursor.fetchone()
        cursor.execute("SELECT pg_size_pretty(pg_relation_size('cart_recovery_cart_due'))")
        size = cursor.fetchone()[0]
    print(f"\n  rows in table: {total:,}; in partial index cart_recovery_cart_due: {indexed:,} ({size})")


if __name__ == "__main__":
    main()
