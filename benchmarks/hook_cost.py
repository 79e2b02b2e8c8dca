"""Cost of the checkout hook's only work, ``record_activity``, as the number of stored carts grows.

For each size it stores that many carts (one INSERT … SELECT generate_series, then ANALYZE) and
times ``--calls`` calls for a new cart (insert path) and for an existing cart (update path of the
upsert), printing queries per call and mean / p95 latency. Expected: 1 query per call, latency
flat across sizes.

    .venv/bin/python benchmarks/hook_cost.py [--calls 2000] [--sizes 0,10000,100000]
"""

import argparse
import random
import time
import uuid

import common  # noqa: F401  (sets up Django first)
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from saleor_cart_recovery.series.activity import record_activity
from saleor_cart_recovery.settings.channel import RecoverySettings

COUNTED_CALLS = 200


def call(token: str, at, settings) -> None:
    record_activity(
        checkout_token=token,
        channel_slug=common.CHANNEL,
        email="Shopper@Example.com",
        language_code="en-US",
        at=at,
        settings=settings,
    )


def measure(tokens: list[str], at, settings) -> tuple[float, float, float]:
    """Queries per call (over the first calls), then mean and p95 latency in ms over all calls."""
    with CaptureQueriesContext(connection) as queries:
        for token in tokens[:COUNTED_CALLS]:
            call(token, at, settings)
    per_call = len(queries.captured_queries) / min(len(tokens), COUNTED_CALLS)
    samples = []
    for token in tokens[COUNTED_CALLS:]:
        started = time.perf_counter_ns()
        call(token, at, settings)
        samples.append(time.perf_counter_ns() - started)
    return (per_call, *common.mean_p95_ms(samples))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per path and size")
    parser.add_argument("--sizes", default="0,10000,100000", help="stored carts, comma separated")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    settings = RecoverySettings.from_plugin_configuration(common.CONFIGURATION)
    now = timezone.now()
    random.seed(1)

    print(
        f"record_activity: {args.calls} timed calls per path (queries counted over {COUNTED_CALLS}), "
        f"database {connection.settings_dict['NAME']}"
    )
    header = f"{'stored carts':>12} | {'path':<14} | {'queries/call':>12} | {'mean ms':>8} | {'p95 ms':>8}"
    print(header)
    print("-" * len(header))
    for size in sizes:
        common.reset_tables()
        common.add_idle_carts(size, now=now)
        common.analyze()
        stored = common.stored_carts()
        warm = [str(uuid.uuid4()) for _ in range(50)]
        for token in warm:
            call(token, now, settings)

        new_tokens = [str(uuid.uuid4()) for _ in range(COUNTED_CALLS + args.calls)]
        existing_pool = [f"idle-{g}" for g in range(1, size + 1)] or new_tokens
        existing = [random.choice(existing_pool) for _ in range(COUNTED_CALLS + args.calls)]
        for path, tokens in (("new cart", new_tokens), ("existing cart", existing)):
            per_call, mean, p95 = measure(tokens, now, settings)
            print(f"{stored:>12,} | {path:<14} | {per_call:>12.2f} | {mean:>8.3f} | {p95:>8.3f}")


if __name__ == "__main__":
    main()
