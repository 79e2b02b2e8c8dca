"""Cost of ``cart_recovery_report`` over a million carts, this version side by side with an earlier one.

Fills one channel (one experiment version) with ``--carts`` carts in a realistic mix — 10 %
held-out shoppers, cadences A/B, about two reminders per treated cart (subject variants A/B, mostly
sent, some clicked, a few failed or bounced; held-out carts get skipped/holdout messages), about
12 % converted (matched by token or by email, some orders matched to two carts of one shopper, a
few cancelled or refunded), shoppers with 1 to 3 carts and a decided subject winner for step 1 —
with ``INSERT … SELECT generate_series``, then ``VACUUM (ANALYZE)``.

Then, for each version, in a process of its own against that same database: the wall time of
``call_command("cart_recovery_report", "--json", channel=…)``, best of ``--repeat``, with the time
spent in SQL and the process's peak RSS; and what the dispatcher pays per cycle to know the
automatic winner (this version: ``read_winners``, the decisions table read by key; the earlier
one: ``current_winners``, a report scan plus Monte-Carlo draws, cached 10 minutes).
The earlier version is the package exported from git at ``--baseline`` (with its test shop);
it reads only columns that still exist (this version's are additions).

    .venv/bin/python benchmarks/report_cost.py [--carts 1000000] [--repeat 3] [--baseline 0301d0f] \
        [--reuse] [--explain]
"""

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from planning_cost import export_version, import_version, load

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("CART_RECOVERY_DB_NAME", "cart_recovery_bench_report")
BASELINE = "0301d0f"  # the last commit before the intent-to-treat report and the winners table
TARGET_CARTS, TARGET_S = 1_000_000, 5.0  # "1 M carts in a few seconds"
CHANNEL = "bench"
EXPERIMENTS = [  # on top of common.CONFIGURATION: what makes the report's arms
    {"name": "holdout_percent", "value": "10"},
    {"name": "cadences", "value": "A: 1h, 1d, 3d | B: 12h, 2d, 8d"},
    {
        "name": "subjects",
        "value": "1: Forgot something?\n1: Your cart is waiting\n2: Still thinking?\n"
        "2: Still there for you\n3: Last call",
    },
    {"name": "auto_winner", "value": "true"},
]
HISTORY = timedelta(days=60)  # carts first seen over 60 days, the last one a week ago
SUBJECT_WINNER_AT = timedelta(days=50)  # step 1's subject decided 50 days in: later carts get A

# Carts in blocks of 10 ids: 7 shoppers, five with one cart, one with two, one with three (pos 7-9).
# In one block of 10, the three-cart shopper's carts 7 and 8 share an order (matched by email to
# both; half of those pairs have the token match on cart 7): 2 % of carts. Holdout is per shopper
# (10 %); the other carts convert at 10.5 % (treated) or 8.5 % (held out), 12 % in all. An order
# comes 20 minutes to 6 days after the cart's last activity (a shared one 3 hours after the later
# cart was created). 1 in 40 orders is cancelled, 1 in 20 refunded (a third of those in full).
_CARTS_SQL = """
INSERT INTO cart_recovery_cart (checkout_token, channel_slug, email, language_code, status, stop_reason,
    last_activity_at, holdout, experiment, cadence, steps_planned, last_planned_at, next_due_at,
    order_id, order_number, order_total, order_currency, order_refunded, order_cancelled,
    conversion_match, converted_at, created_at, updated_at)
SELECT 'report-' || g, %(channel)s, 'shopper' || shopper || '@example.com', 'en',
    CASE WHEN converted THEN 'converted' ELSE 'finished' END,
    CASE WHEN converted THEN 'purchased' ELSE 'series_finished' END,
    last_activity, holdout, %(version)s, cadence, 2, last_activity + interval '1 day', NULL,
    CASE WHEN converted THEN order_id ELSE '' END, CASE WHEN converted THEN order_id ELSE '' END,
    CASE WHEN converted THEN total END, CASE WHEN converted THEN 'USD' ELSE '' END,
    CASE WHEN converted AND NOT paired AND g %% 20 = 11
         THEN CASE WHEN g %% 3 = 0 THEN total ELSE round(total / 4, 2) END ELSE 0 END,
    converted AND NOT paired AND g %% 40 = 7,
    CASE WHEN NOT converted THEN ''
         WHEN paired THEN CASE WHEN pos = 7 AND b %% 20 = 3 THEN 'token' ELSE 'email' END
         WHEN g %% 5 = 0 THEN 'email' ELSE 'token' END,
    CASE WHEN NOT converted THEN NULL
         WHEN paired THEN %(start)s + (10 * b + 8) * %(spacing)s + interval '3 hours'
         ELSE last_activity + ((g * 7919) %% 8640 + 20) * interval '1 minute' END,
    created, created
FROM (
    SELECT *, created + (g %% 90) * interval '1 minute' AS last_activity,
        paired OR (g * 40503) %% 1000 < CASE WHEN holdout THEN 85 ELSE 105 END AS converted,
        CASE WHEN paired THEN 'order-p' || b ELSE 'order-' || g END AS order_id,
        (20 + CASE WHEN paired THEN b ELSE g END %% 180)::numeric + 0.99 AS total,
        CASE WHEN (g * 48271) %% 1009 < 505 THEN 'A' ELSE 'B' END AS cadence
    FROM (
        SELECT *, (shopper * 2654435761) %% 1000 < 100 AS holdout,
            b %% 10 = 3 AND pos IN (7, 8) AS paired, %(start)s + (g - 1) * %(spacing)s AS created
        FROM (
            SELECT g, b, pos, 7 * b + CASE WHEN pos < 5 THEN pos WHEN pos < 7 THEN 5 ELSE 6 END AS shopper
            FROM (SELECT g, (g - 1) / 10 AS b, (g - 1) %% 10 AS pos
                  FROM generate_series(1, %(carts)s::bigint) AS g) AS ids
        ) AS shoppers
    ) AS assigned
) AS carts
"""
# Steps 1 and 2 of each cart, when planned before its order: 1 h / 1 d after the last activity
# (cadence A) or 12 h / 2 d (B). Held out: skipped/holdout. Treated, by a hash h in 0..999: 0.8 %
# bounced, 1.2 % retries exhausted, 1 % skipped (unsubscribed), the rest sent, 9 % of those
# clicked. Step 1 of carts after the subject decision has the winner's variant (A).
_MESSAGES_SQL = """
INSERT INTO cart_recovery_message (cart_id, step, status, reason, variant, content, voucher_code, clicks,
    first_clicked_at, subject, recipient, attempts, error, planned_at, attempt_after, sent_at, updated_at)
SELECT c.id, s.step,
    CASE WHEN c.holdout OR r.h BETWEEN 20 AND 29 THEN 'skipped' WHEN r.h < 20 THEN 'failed' ELSE 'sent' END,
    CASE WHEN c.holdout THEN 'holdout' WHEN r.h < 8 THEN 'bounced' WHEN r.h < 20 THEN 'retries_exhausted'
         WHEN r.h < 30 THEN 'unsubscribed' ELSE '' END,
    CASE WHEN s.step = 1 AND c.created_at >= %(decided_at)s THEN 0
         ELSE (c.id * 48271 + s.step * 7) %% 1009 %% 2 END,
    'reminder', '',
    CASE WHEN r.clicked THEN 1 + r.h %% 3 ELSE 0 END,
    CASE WHEN r.clicked THEN s.at + interval '5 seconds' + (r.h %% 240) * interval '1 minute' END,
    'Forgot something?', c.email, CASE WHEN c.holdout OR r.h BETWEEN 20 AND 29 THEN 0 ELSE 1 END, '',
    s.at, s.at, CASE WHEN NOT c.holdout AND r.h >= 30 THEN s.at + interval '5 seconds' END, s.at
FROM cart_recovery_cart c
CROSS JOIN LATERAL (VALUES
    (1, c.last_activity_at + CASE c.cadence WHEN 'A' THEN interval '1 hour' ELSE interval '12 hours' END),
    (2, c.last_activity_at + CASE c.cadence WHEN 'A' THEN interval '1 day' ELSE interval '2 days' END)
) AS s(step, at)
CROSS JOIN LATERAL (
    SELECT h, NOT c.holdout AND h >= 30 AND h %% 100 < 9 AS clicked
    FROM (SELECT (c.id * 2654435761 + s.step * 40503) %% 1000 AS h) AS hashed
) AS r
WHERE c.channel_slug = %(channel)s AND (c.converted_at IS NULL OR s.at < c.converted_at)
"""
_MIX_SQL = """
SELECT COUNT(*), COUNT(DISTINCT email), COUNT(*) FILTER (WHERE holdout),
    COUNT(*) FILTER (WHERE status = 'converted'), COUNT(DISTINCT order_id) FILTER (WHERE order_id <> ''),
    COUNT(*) FILTER (WHERE conversion_match = 'email'), COUNT(*) FILTER (WHERE order_cancelled),
    COUNT(*) FILTER (WHERE order_refunded > 0),
    (SELECT COUNT(*) FROM cart_recovery_message),
    (SELECT COUNT(*) FROM cart_recovery_message m JOIN cart_recovery_cart t ON t.id = m.cart_id
     WHERE NOT t.holdout),
    (SELECT COUNT(*) FROM cart_recovery_message WHERE status = 'sent'),
    (SELECT COUNT(*) FROM cart_recovery_message WHERE clicks > 0),
    (SELECT COUNT(*) FROM cart_recovery_message WHERE status = 'failed')
FROM cart_recovery_cart WHERE channel_slug = %(channel)s
"""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


# ---------------------------------------------------------------------------------------------
# The parent: fill the database once, then measure each version in a child process.


def configure() -> str:
    """Sets the channel's configuration; returns its experiment version (the key the carts get)."""
    import common

    from saleor_cart_recovery.shop import settings_or_none
    from tests.shopapp.models import ShopChannel

    ShopChannel.objects.filter(slug=CHANNEL).update(configuration=common.CONFIGURATION + EXPERIMENTS)
    settings = settings_or_none(CHANNEL)
    assert settings is not None and settings.experiments.auto_winner, "benchmark configuration invalid"
    return settings.experiments.version


def fill(carts: int, reuse: bool) -> None:
    import common
    from django.db import connection
    from django.utils import timezone

    from saleor_cart_recovery.experiments.winners import subject_set
    from saleor_cart_recovery.models import RecoveryWinner

    if reuse and common.stored_carts() == carts:
        configure()
        print(f"reusing the {carts:,} carts stored in {connection.settings_dict['NAME']}", flush=True)
        return
    started = time.perf_counter()
    common.reset_tables()
    RecoveryWinner.objects.all().delete()
    version = configure()
    start = timezone.now() - HISTORY - timedelta(days=7)
    decided_at = start + SUBJECT_WINNER_AT
    RecoveryWinner.objects.create(
        channel_slug=CHANNEL, experiment=version, arm_set=subject_set(1), arm="0", decided_at=decided_at
    )
    params = {
        "channel": CHANNEL,
        "version": version,
        "carts": carts,
        "start": start,
        "spacing": HISTORY / carts,
        "decided_at": decided_at,
    }
    with connection.cursor() as cursor:
        cursor.execute(_CARTS_SQL, params)
        cursor.execute(_MESSAGES_SQL, params)
        inserted = time.perf_counter() - started
        for statement in (
            "VACUUM (ANALYZE) cart_recovery_cart",
            "VACUUM (ANALYZE) cart_recovery_message",
            "CHECKPOINT",
        ):
            cursor.execute(statement)
    print(
        f"filled {connection.settings_dict['NAME']} in {inserted:.0f} s "
        f"(+ {time.perf_counter() - started - inserted:.0f} s VACUUM (ANALYZE), CHECKPOINT)",
        flush=True,
    )


def print_mix() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(_MIX_SQL, {"channel": CHANNEL})
        carts, shoppers, holdout, converted, orders, by_email, cancelled, refunded, *messages = (
            cursor.fetchone()
        )
    total, treated, sent, clicked, failed = messages
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('server_version'), current_setting('shared_buffers'), "
            "current_setting('work_mem'), current_setting('max_parallel_workers_per_gather'), "
            "current_setting('jit')"
        )
        version, buffers, work_mem, workers, jit = cursor.fetchone()
    print(
        f"PostgreSQL {version}, shared_buffers {buffers}, work_mem {work_mem}, "
        f"max_parallel_workers_per_gather {workers}, jit {jit}; {os.cpu_count()} cores",
        flush=True,
    )
    print(
        f"channel {CHANNEL}: {carts:,} carts of {shoppers:,} shoppers, {holdout / carts:.1%} held out; "
        f"{converted:,} converted ({converted / carts:.1%}) for {orders:,} orders, {by_email:,} matched "
        f"by email, {cancelled:,} cancelled, {refunded:,} refunded; {total:,} messages "
        f"({treated / (carts - holdout):.2f} per treated cart): {sent:,} sent, {clicked:,} clicked, "
        f"{failed:,} failed",
        flush=True,
    )


def run(label: str, package_dir: Path, options, explain: bool = False) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as results:
        env = {**os.environ, "PYTHONPATH": str(package_dir)}
        command = [sys.executable, __file__, "--measure", label, "--results", results.name]
        command += ["--repeat", str(options.repeat)] + (["--explain"] if explain else [])
        if subprocess.run(command, env=env).returncode:
            sys.exit(f"measuring {label} failed")
        return json.loads(Path(results.name).read_text())


def work_tree() -> str:
    """The commit the work tree is on, and whether the package has uncommitted edits: the label of
    this version's figures."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    edited = subprocess.run(
        [*git, "status", "--porcelain", "saleor_cart_recovery"], capture_output=True, text=True
    ).stdout
    return head.strip() + (" + edits" if edited.strip() else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--carts", type=int, default=TARGET_CARTS, help="carts in the channel")
    parser.add_argument("--repeat", type=int, default=3, help="timed reports per version (best is shown)")
    parser.add_argument("--baseline", default=BASELINE, help="git commit of the earlier version")
    parser.add_argument("--reuse", action="store_true", help="keep the carts stored if there are --carts")
    parser.add_argument("--explain", action="store_true", help="print this version's query plans")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--results", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.measure:
        result = measure(options.measure, options.repeat, options.explain)
        Path(options.results).write_text(json.dumps(result))
        return

    import common  # noqa: F401  (sets up Django on the work tree, creates and migrates the database)

    fill(options.carts, options.reuse)
    print_mix()
    with tempfile.TemporaryDirectory() as baseline_dir:
        export_version(options.baseline, Path(baseline_dir))
        now = run(f"now ({work_tree()})", ROOT, options, explain=options.explain)
        before = run(f"before ({options.baseline})", Path(baseline_dir), options)
    print_summary(now, before)


def print_summary(now: dict, before: dict) -> None:
    print(f"\ncart_recovery_report --json --channel {CHANNEL}, best of {len(now['seconds'])}")
    header = (
        f"{'version':<24} | {'carts':>9} | {'seconds':>7} | {'median':>6} | {'in SQL':>6} | "
        f"{'queries':>7} | {'peak RSS MB':>11}"
    )
    print(header)
    print("-" * len(header))
    for result in (now, before):
        print(
            f"{result['label']:<24} | {result['carts']:>9,} | {min(result['seconds']):>7.2f} | "
            f"{statistics.median(result['seconds']):>6.2f} | {result['sql_s']:>6.2f} | "
            f"{result['queries']:>7} | {result['peak_rss_mb']:>11.0f}"
        )
    best = min(now["seconds"])
    verdict = "met" if now["carts"] >= TARGET_CARTS and best <= TARGET_S else "not met"
    print(
        f"target: {TARGET_CARTS:,} carts in a few seconds (<= {TARGET_S:.0f} s): {verdict} "
        f"({best:.1f} s for {now['carts']:,} carts; before {min(before['seconds']):.1f} s)"
    )
    print("\nautomatic winner, what the dispatcher pays per cycle to know it (one call each):")
    for result in (now, before):
        print(f"  {result['label']}: {result['winner']}")


# ---------------------------------------------------------------------------------------------
# The child: one version, imported from PYTHONPATH.


class _Steps:
    """Stands in for the command's stderr: when each progress line came (this version: one per
    grouped scan; the earlier one: one per id range of its chunked scan)."""

    def __init__(self):
        self.started, self.at = time.perf_counter(), []

    def write(self, text: str) -> None:
        self.at.append(time.perf_counter() - self.started)

    def flush(self) -> None:
        pass

    def durations(self) -> list[float]:
        return [b - a for a, b in zip([0.0, *self.at], self.at, strict=False)]


class _SqlTimer:
    """A Django execute wrapper: time and count of the statements the report runs."""

    def __init__(self):
        self.seconds, self.queries = 0.0, 0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.queries += 1


def measure(label: str, repeat: int, explain: bool) -> dict:
    package, shop = import_version()
    import common  # noqa: F401
    from django.core.management import call_command
    from django.db import connection

    print(
        f"\n{label}: package {package}, database {connection.settings_dict['NAME']}, load average {load()}",
        flush=True,
    )
    seconds, timers = [], []
    for _ in range(repeat):
        out, timer, steps = io.StringIO(), _SqlTimer(), _Steps()
        with connection.execute_wrapper(timer):
            started = time.perf_counter()
            call_command("cart_recovery_report", "--json", channel=CHANNEL, stdout=out, stderr=steps)
            seconds.append(time.perf_counter() - started)
        timers.append(timer)
        took = steps.durations()
        if not took:  # the earlier version reports no progress for a single id range
            scans = "no progress lines"
        elif len(took) <= 6:
            scans = "scans " + " / ".join(f"{s:.2f}" for s in took) + " s"
        else:
            scans = f"{len(took)} scan steps of {min(took):.2f}-{max(took):.2f} s"
        after = seconds[-1] - (steps.at[-1] if steps.at else 0.0)
        print(
            f"  report: {seconds[-1]:.2f} s ({timer.seconds:.2f} s executing {timer.queries} queries; "
            f"{scans}; after the last scan {after:.2f} s)",
            flush=True,
        )
    rss = peak_rss_mb()
    data = json.loads(out.getvalue())
    carts = sum(report["treated"]["carts"] + report["holdout"]["carts"] for report in data)
    fastest = timers[seconds.index(min(seconds))]
    if explain:
        explain_report()
    return {
        "label": label,
        "carts": carts,
        "seconds": seconds,
        "sql_s": fastest.seconds,
        "queries": fastest.queries,
        "peak_rss_mb": rss,
        "winner": winner_cost(),
    }


def winner_cost() -> str:
    """This version: the decisions read by key (as ``dispatch._plan_batch`` does per batch). The
    earlier one: ``current_winners`` as its dispatcher called it each cycle — a report scan and the
    Monte-Carlo draws on a cache miss (once per 10 minutes), a cache read otherwise. Both for the
    experiment version the carts carry (a version's digest may differ between the two codes)."""
    from django.core.cache import cache
    from django.db import connection

    from saleor_cart_recovery.shop import settings_or_none

    with connection.cursor() as cursor:
        cursor.execute("SELECT experiment FROM cart_recovery_cart WHERE channel_slug = %s LIMIT 1", [CHANNEL])
        (version,) = cursor.fetchone()
    settings = settings_or_none(CHANNEL)
    assert settings is not None
    settings = replace(settings, experiments=replace(settings.experiments, version=version))
    try:
        from saleor_cart_recovery.experiments.winners import read_winners
    except ImportError:
        read_winners = None
    if read_winners is not None:
        keys = {(CHANNEL, version)}
        read_winners(keys)  # the dispatcher is a long-lived worker: queries compiled once
        started = time.perf_counter()
        decisions = read_winners(keys)
        took = time.perf_counter() - started
        return (
            f"read_winners (decisions table, by key) {took * 1e3:.2f} ms every cycle; "
            f"{len(decisions[(CHANNEL, version)])} decision(s) read"
        )

    from saleor_cart_recovery.experiments import assignment, stats

    drawing = [0.0]
    inner = stats.probability_best

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            drawing[0] += time.perf_counter() - started

    stats.probability_best = timed
    cache.clear()
    started = time.perf_counter()
    winners = assignment.current_winners(CHANNEL, settings)
    miss = time.perf_counter() - started
    started = time.perf_counter()
    assignment.current_winners(CHANNEL, settings)
    hit = time.perf_counter() - started
    cycles = assignment.WINNER_CACHE_SECONDS // 60  # the dispatcher runs every minute
    return (
        f"current_winners (report scan + {stats.DRAWS:,} Monte-Carlo draws per arm set) "
        f"{miss:.2f} s on a cache miss (draws {drawing[0]:.2f} s), {hit * 1e3:.2f} ms cached; "
        f"a miss every {cycles} cycles: {(miss + (cycles - 1) * hit) / cycles:.2f} s per cycle on average "
        f"(winners {winners})"
    )


def explain_report() -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement one report runs (this version's SQL)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from saleor_cart_recovery.experiments.report import build_report
    from saleor_cart_recovery.shop import settings_or_none

    with CaptureQueriesContext(connection) as captured:
        build_report(channel=CHANNEL, settings_for=settings_or_none)
    for query in captured.captured_queries:
        if not query["sql"].lstrip().upper().startswith(("WITH", "SELECT")) or float(query["time"]) < 0.05:
            continue
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query['sql']}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        print(f"\n--- {query['time']} s:\n{query['sql'].strip()}\n{plan}", flush=True)


if __name__ == "__main__":
    main()
