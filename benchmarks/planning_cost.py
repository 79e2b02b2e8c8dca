"""Cost of planning many due carts at once, this version side by side with an earlier one.

For each number of idle carts (stored but not due: waiting for a later step, finished or
converted) and each number of due carts (first step due), it times ``dispatch(now=…, send=no-op)``
run cycle after cycle until no cart is due any more, ``--repeat`` times per size (due carts put
back and the tables vacuumed in between, outside the timing). What is timed:

* plan: the time spent inside the dispatcher's planning batches (``_plan_batch``, wrapped with
  a timer; each batch is its own transaction, commit included), summed over the cycles;
* enqueue: the same for the hand-out batches (``_enqueue_batch``; ``send`` does nothing);
* cycle: the wall time of the ``dispatch()`` calls, summed over the cycles (plan, enqueue, the
  winner decision, stale claims and, in this version, the backlog).

Queries are counted with ``CaptureQueriesContext`` over one untimed first cycle per size.
The earlier version is the package exported from git at ``--baseline`` (with the test shop of
that commit) and measured by this same script in its own process against its own database;
both versions create the same tables.

    .venv/bin/python benchmarks/planning_cost.py [--due 10000,100000] [--idle 0,1000000] \
        [--repeat N] [--baseline 965ffee]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEGEND = """\
dispatch(now=…, send=no-op) cycle after cycle until no cart is due, per number of due carts (due)
and of carts stored but not due (idle). planned: messages over all cycles; cycle 1: planned by the
first cycle; left: due carts it left unplanned (this version: its backlog.due_unplanned); cycles:
cycles until none was due; queries: in the first cycle (pl: inside the planning batches); plan s:
time inside the planning batches over all cycles, median / min of the rounds; carts/s: due / plan s
median; enqueue s: inside the hand-out batches (median); cycles s: wall time of all dispatch()."""
TARGET_DUE, TARGET_S = 10_000, 1.0  # planning 10,000 due carts takes under a second
BASELINE = "965ffee"
# What the earlier version needs from its commit: the package and the test shop written for it.
EXPORTED = ["saleor_cart_recovery", "tests/__init__.py", "tests/settings.py", "tests/shopapp"]


def export_version(commit: str, into: Path) -> None:
    """The package (and the test shop it runs on) as ``commit`` had it, written under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, *EXPORTED], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def load() -> str:
    """The machine's 1/5/15-minute load averages: other work on the same cores skews the timings."""
    return " / ".join(f"{value:.1f}" for value in os.getloadavg())


def default_repeat(due: int) -> int:
    return 3 if due <= 10_000 else 1


class Timed:
    """Wraps a batch function of the dispatcher module: time, calls and captured queries inside it."""

    def __init__(self, module, name: str):
        self.inner = getattr(module, name)
        setattr(module, name, self)
        self.reset()

    def reset(self) -> None:
        self.seconds, self.queries = 0.0, 0

    def __call__(self, *args, **kwargs):
        from django.db import connection

        logged = len(connection.queries_log)  # grows only while queries are captured
        started = time.perf_counter()
        try:
            return self.inner(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started
            self.queries += len(connection.queries_log) - logged


def import_version() -> tuple[Path, Path]:
    """Imports the package and the test shop from PYTHONPATH before ``common`` puts the work tree
    first on ``sys.path`` (imported packages stay where they were found)."""
    import saleor_cart_recovery
    import tests

    return Path(saleor_cart_recovery.__file__).parent, Path(tests.__file__).parent


def measure(due_sizes: list[int], idle_sizes: list[int], repeat: int | None, label: str) -> list[dict]:
    """Runs in a child process whose PYTHONPATH starts with the version's package directory."""
    package, shop = import_version()
    import common
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from saleor_cart_recovery.series import dispatch as dispatcher

    plan, enqueue = Timed(dispatcher, "_plan_batch"), Timed(dispatcher, "_enqueue_batch")
    now = timezone.now()
    noop = lambda message_ids: None  # noqa: E731

    def execute(*statements: str) -> None:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def due_left() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM cart_recovery_cart WHERE next_due_at <= %s", [now])
            return cursor.fetchone()[0]

    def cycle() -> dict:
        plan.reset()
        enqueue.reset()
        started = time.perf_counter()
        result = dispatcher.dispatch(now=now, send=noop)
        seconds = time.perf_counter() - started
        reported = getattr(result, "backlog", None)  # this version reports it, the earlier one does not
        left = reported.due_unplanned if reported is not None else due_left()
        return {
            "seconds": seconds,
            "plan_s": plan.seconds,
            "enqueue_s": enqueue.seconds,
            "plan_queries": plan.queries,
            "planned": result.planned,
            "left": left,
        }

    cap, size = getattr(dispatcher, "MAX_BATCHES", None), dispatcher.BATCH_SIZE
    limits = f"at most {cap} x {size}" if cap else f"batches of {size}, no cap"
    print(
        f"\n{label}: package {package}, shop {shop}, planning {limits} per cycle, "
        f"database {connection.settings_dict['NAME']}, load average {load()}",
        flush=True,
    )
    header = (
        f"{'due':>7} | {'idle':>9} | {'planned':>7} | {'cycle 1':>7} | {'left':>6} | {'cycles':>6} | "
        f"{'queries':>13} | {'plan s med/min':>15} | {'carts/s':>7} | {'enqueue s':>9} | "
        f"{'cycles s med/min':>16}"
    )
    print(header)
    print("-" * len(header), flush=True)

    rows = []
    common.reset_tables()
    stored_idle = 0
    for idle in idle_sizes:
        common.add_idle_carts(idle - stored_idle, now=now, start=stored_idle)
        stored_idle = idle
        for due in due_sizes:
            execute(  # the previous size's due carts and their messages; the idle history stays
                "DELETE FROM cart_recovery_message WHERE cart_id IN "
                "(SELECT id FROM cart_recovery_cart WHERE checkout_token LIKE 'due-%')",
                "DELETE FROM cart_recovery_cart WHERE checkout_token LIKE 'due-%'",
            )
            tokens = common.add_due_carts(due, now)
            rounds = []
            for round_ in range(1 + (repeat or default_repeat(due))):
                common.make_due(tokens, now)
                # Cleaned, analyzed and written out: the bulk set-up's WAL must not be flushed by a
                # checkpoint in the middle of a timed round.
                execute(
                    "VACUUM (ANALYZE) cart_recovery_cart",
                    "VACUUM (ANALYZE) cart_recovery_message",
                    "CHECKPOINT",
                )
                if round_ == 0:  # untimed: the first cycle with its queries captured (adds overhead)
                    with CaptureQueriesContext(connection) as queries:
                        first = cycle()
                    first["queries"] = len(queries.captured_queries)
                    continue
                cycles = [cycle()]
                while cycles[-1]["left"] and cycles[-1]["planned"]:
                    cycles.append(cycle())
                rounds.append(cycles)
            row = summarize(due, idle, first, rounds)
            rows.append(row)
            print(format_row(row), flush=True)
    print(f"load average {load()}", flush=True)
    return rows


def summarize(due: int, idle: int, first: dict, rounds: list[list[dict]]) -> dict:
    def total(cycles, key):
        return sum(c[key] for c in cycles)

    return {
        "due": due,
        "idle": idle,
        "planned": total(rounds[-1], "planned"),
        "planned_first": rounds[-1][0]["planned"],
        "left_first": rounds[-1][0]["left"],
        "cycles": len(rounds[-1]),
        "queries_first": first["queries"],
        "plan_queries_first": first["plan_queries"],
        "plan_s": [total(cycles, "plan_s") for cycles in rounds],
        "enqueue_s": [total(cycles, "enqueue_s") for cycles in rounds],
        "seconds": [total(cycles, "seconds") for cycles in rounds],
    }


def format_row(row: dict) -> str:
    plan_median = statistics.median(row["plan_s"])
    return (
        f"{row['due']:>7,} | {row['idle']:>9,} | {row['planned']:>7,} | {row['planned_first']:>7,} | "
        f"{row['left_first']:>6,} | {row['cycles']:>6} | "
        f"{row['queries_first']:>5} ({row['plan_queries_first']:>4} pl) | "
        f"{plan_median:>7.2f} / {min(row['plan_s']):>5.2f} | {row['due'] / plan_median:>7,.0f} | "
        f"{statistics.median(row['enqueue_s']):>9.2f} | "
        f"{statistics.median(row['seconds']):>7.2f} / {min(row['seconds']):>6.2f}"
    )


def run(label: str, package_dir: Path, database: str, options) -> list[dict]:
    with tempfile.NamedTemporaryFile(suffix=".json") as results:
        env = {**os.environ, "PYTHONPATH": str(package_dir), "CART_RECOVERY_DB_NAME": database}
        command = [sys.executable, __file__, "--measure", label, "--results", results.name]
        command += ["--due", options.due, "--idle", options.idle]
        command += ["--repeat", str(options.repeat)] if options.repeat else []
        if subprocess.run(command, env=env).returncode:
            sys.exit(f"measuring {label} failed")
        return json.loads(Path(results.name).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--due", default="10000,100000", help="due carts, comma separated")
    parser.add_argument("--idle", default="0,1000000", help="idle carts stored, comma separated")
    parser.add_argument(
        "--repeat", type=int, help="timed rounds per size (default 3 up to 10,000 due carts, else 1)"
    )
    parser.add_argument("--baseline", default=BASELINE, help="git commit of the earlier version")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--results", help=argparse.SUPPRESS)
    options = parser.parse_args()
    due_sizes = [int(n) for n in options.due.split(",")]
    idle_sizes = sorted(int(n) for n in options.idle.split(","))
    if options.measure:
        rows = measure(due_sizes, idle_sizes, options.repeat, options.measure)
        Path(options.results).write_text(json.dumps(rows))
        return

    database = os.environ.get("CART_RECOVERY_DB_NAME", "cart_recovery_bench_plan")
    print(LEGEND, flush=True)
    with tempfile.TemporaryDirectory() as baseline_dir:
        export_version(options.baseline, Path(baseline_dir))
        now = run("this version (work tree)", ROOT, f"{database}_now", options)
        before = run(f"before ({options.baseline})", Path(baseline_dir), f"{database}_before", options)

    print()
    for row, old in zip(now, before, strict=True):
        cycles = f"{old['cycles']} cycle{'s' if old['cycles'] != 1 else ''}"
        print(
            f"{row['due']:,} due carts ({row['idle']:,} idle) planned in "
            f"{statistics.median(row['plan_s']):.2f} s (before: {statistics.median(old['plan_s']):.2f} s "
            f"in {cycles}); whole dispatch {statistics.median(row['seconds']):.2f} s "
            f"(before: {statistics.median(old['seconds']):.2f} s)"
        )
    for row in now:
        if row["due"] == TARGET_DUE:
            seconds = statistics.median(row["plan_s"])
            verdict = "met" if seconds < TARGET_S else "missed"
            print(
                f"target: {TARGET_DUE:,} due carts planned in under {TARGET_S:.0f} s with "
                f"{row['idle']:,} idle: {verdict} ({seconds:.2f} s)"
            )


if __name__ == "__main__":
    main()
