"""What reading the report costs an owner over 1,000,000 carts: the 10-minute rollup builds each
channel's report once (off any request) and ``cart_recovery_report`` shows the stored one.

Uses the carts ``report_cost.py`` stored (run that first; it fills ``cart_recovery_bench_report``).

    .venv/bin/python benchmarks/report_rollup.py
"""

import os
import time
from io import StringIO

os.environ.setdefault("CART_RECOVERY_DB_NAME", "cart_recovery_bench_report")

import common  # noqa: E402, F401  (sets up Django against the benchmark database)
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from saleor_cart_recovery.experiments.rollup import rollup  # noqa: E402
from saleor_cart_recovery.models import RecoveryCart, RecoveryReportSnapshot  # noqa: E402
from saleor_cart_recovery.shop import settings_or_none  # noqa: E402


def main() -> None:
    carts = RecoveryCart.objects.count()
    RecoveryReportSnapshot.objects.all().delete()
    started = time.perf_counter()
    rollup(timezone.now(), settings_or_none)
    build = time.perf_counter() - started
    reads = []
    for _ in range(3):
        started = time.perf_counter()
        call_command("cart_recovery_report", stdout=StringIO())
        reads.append(time.perf_counter() - started)
    print(
        f"{carts:,} carts: rollup build (every 10 min, off any request) {build:.2f} s; "
        f"cart_recovery_report reading it {min(reads) * 1000:.0f} ms (best of 3)"
    )
    verdict = "met" if min(reads) <= 5 else "not met"
    print(f"target: cart_recovery_report over 1,000,000 carts in a few seconds: {verdict}")


if __name__ == "__main__":
    main()
