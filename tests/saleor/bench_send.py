"""The send path of both hosts in one run on one machine: the plugin inside real Saleor 3.23's
process, and the App in its own process asking real Saleor's ASGI server over HTTP.

    PYTHONPATH=/opt/saleor-src /opt/saleor-venv/bin/python tests/saleor/bench_send.py \
        [--carts 500] [--template test_saleor_cr_template] [--baseline COMMIT] [--profile DIR]

Each host gets the same carts on its own scratch copy of Saleor's migrated test database
(``--template``): ``--carts`` checkouts of two lines each, priced at the shopper's last visit and
left two hours ago, their stored prices expired since (``bench_saleor.py``). The **plugin** records
them through its checkout hook and sends from Saleor's process. The **App** (``bench_app.py``, run
by the app server's Python, ``CART_RECOVERY_APP_PYTHON``, which has no Saleor) gets a fresh
database of its own, migrated; the installation with an app token Saleor knows, the channel's
settings, and each checkout recorded by its checkout webhook's handler from the payload Saleor would
deliver; its shop port reads carts and checks orders over HTTP with Saleor's server (uvicorn, its
own process) on the second copy. Then each host's first steps are due and one in-process
``cart_recovery_dispatch`` (plan and send every due reminder) is timed, to an aiosmtpd server on
loopback (``bench_dispatch.py``).

Printed per host: emails, seconds, emails/s, the dispatching process's CPU seconds, SQL queries per
email (the host's own database connections: Saleor's work behind the App's HTTP requests is not in
it), HTTP requests to Saleor per email and SMTP connections per email; then the App's emails/s
over the plugin's. ``--baseline COMMIT`` adds both hosts as exported from git at that commit
(the plugin alone when it has no App host), measured the same way. ``--profile DIR`` writes a
cProfile of each dispatch there (the times then include the profiler). It is a benchmark: it
asserts only that every reminder arrived once. Without Saleor it says so and exits.

Environment: ``SALEOR_TEMPLATE_DB`` (``--template``'s default, else ``test_saleor_cr_template``),
``CART_RECOVERY_DB_NAME`` (in the scratch databases' names, ``bench_send_<it>_…``; default ``cr``),
``CART_RECOVERY_BROKER_URL`` (the Redis database Saleor's server is given as its broker; emptied
first), ``CART_RECOVERY_APP_PYTHON``, ``PGHOST``/``PGUSER``.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from live_saleor import (
    APP_PYTHON,
    PGHOST,
    PGUSER,
    SALEOR_SRC,
    copy_database,
    database_url,
    drop_database,
    live_saleor,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TEMPLATE_DB = os.environ.get("SALEOR_TEMPLATE_DB", "test_saleor_cr_template")
PREFIX = "bench_send_" + os.environ.get("CART_RECOVERY_DB_NAME", "cr")
BROKER = os.environ.get("CART_RECOVERY_BROKER_URL", "redis://127.0.0.1:6379/4")


def child(label: str, command: list[str], env: dict[str, str], package_dir: Path = ROOT) -> dict:
    """Run one measuring process in ``package_dir``; the JSON on the last line of its output, once
    it says it measured the package of ``package_dir``."""
    done = subprocess.run(command, env=env, cwd=package_dir, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"measuring {label} failed:\n{done.stderr[-4000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(figures.pop("package")).parent.resolve() != package_dir.resolve():
        sys.exit(f"measuring {label} imported saleor_cart_recovery from elsewhere than {package_dir}")
    return figures


def saleor_child(label: str, what: str, database: str, carts: int, package_dir: Path = ROOT, *extra) -> dict:
    """``bench_saleor.py <what>`` in Saleor's Python against ``database``, with the package of
    ``package_dir`` first on the path, and as the working directory: Celery's Django fixup puts
    that first on the path when Saleor's settings load."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(dict.fromkeys([str(package_dir), str(ROOT), SALEOR_SRC])),
        "DATABASE_URL": database,
        "SECRET_KEY": "bench",
    }
    command = [sys.executable, str(HERE / "bench_saleor.py"), what, "--carts", str(carts), *extra]
    return child(label, command, env, package_dir)


def measure_plugin(label: str, carts: int, template: str, package_dir: Path, profile: Path | None) -> dict:
    database = copy_database(f"{PREFIX}_{label}", template=template)
    try:
        extra = ["--profile", str(profile / f"{label}.prof")] if profile else []
        return saleor_child(label, "plugin", database, carts, package_dir, *extra)
    finally:
        drop_database(f"{PREFIX}_{label}")


def measure_app(label: str, carts: int, template: str, package_dir: Path, profile: Path | None) -> dict:
    """Saleor's side made in its Python, its server started on it, then the App's process with the
    package of ``package_dir``."""
    saleor_db, app_db = f"{PREFIX}_{label}_saleor", f"{PREFIX}_{label}"
    saleor_url = copy_database(saleor_db, template=template)
    drop_database(app_db)
    subprocess.run(["createdb", "-h", PGHOST, "-U", PGUSER, app_db], check=True)
    try:
        facts = saleor_child("the App's Saleor", "app-shop", saleor_url, carts)
        with (
            tempfile.NamedTemporaryFile("w", suffix=".json") as facts_file,
            live_saleor(saleor_url, broker_url=BROKER) as saleor,
        ):
            json.dump(facts, facts_file)
            facts_file.flush()
            env = {
                **{name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ},
                "PYTHONPATH": os.pathsep.join(dict.fromkeys([str(package_dir), str(ROOT)])),
                "DATABASE_URL": database_url(app_db),
                "CELERY_BROKER_URL": BROKER,
                "SECRET_KEY": os.urandom(24).hex(),
                "APP_URL": "http://127.0.0.1:8000",  # links in the emails; no app server is asked
                "SALEOR_API_URL": saleor.api_url,
            }
            command = [str(APP_PYTHON), str(HERE / "bench_app.py"), "--carts", str(carts)]
            command += ["--facts", facts_file.name]
            if profile:
                command += ["--profile", str(profile / f"{label}.prof")]
            return child(label, command, env, package_dir)
    finally:
        drop_database(app_db)
        drop_database(saleor_db)


def exported(commit: str, into: str) -> Path:
    """The package as it was at ``commit``, exported into the directory ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "saleor_cart_recovery"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    return Path(into)


def print_table(carts: int, results: dict[str, dict]) -> None:
    print(f"cart_recovery_dispatch in-process, {carts} due carts (2 lines each), real Saleor 3.23")
    row = "{:<24} | {:>6} | {:>7} | {:>8} | {:>5} | {:>13} | {:>14} | {:>16}"
    header = ("host", "emails", "seconds", "emails/s", "CPU s", "queries/email", "HTTP req./email")
    print(row.format(*header, "SMTP conn./email"))
    print("-" * 117)
    for label, figures in results.items():
        emails = figures["emails"]
        print(
            row.format(
                label,
                emails,
                f"{figures['seconds']:.2f}",
                f"{emails / figures['seconds']:.1f}",
                f"{figures['cpu']:.2f}",
                f"{figures['queries'] / emails:.1f}",
                f"{figures['http'] / emails:.2f}",
                f"{figures['connections'] / emails:.3f}",
            )
        )
    rate = {label: figures["emails"] / figures["seconds"] for label, figures in results.items()}
    ratio = rate["App"] / rate["plugin"]
    print(f"App / plugin: {ratio:.2f} of the plugin's emails/s per process (target: at least 0.5)")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average at the end (1, 5, 15 min): {load} on {os.cpu_count()} cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--carts", type=int, default=500)
    parser.add_argument("--template", default=TEMPLATE_DB, help="Saleor's migrated test database")
    parser.add_argument("--baseline", help="also measure both hosts as they were at this commit")
    parser.add_argument("--profile", type=Path, help="write a cProfile of each dispatch into this directory")
    options = parser.parse_args()
    try:
        import saleor  # noqa: F401
    except ImportError:
        print("skipped: Saleor 3.23 is not importable (docs/development.md#the-saleor-suite)")
        return
    if options.profile:
        options.profile.mkdir(parents=True, exist_ok=True)
    if not database_exists(options.template):
        sys.exit(
            f"no database {options.template}: --template is Saleor's migrated test database "
            "(docs/development.md#the-saleor-suite)"
        )
    print_table(options.carts, measure_all(options))


def database_exists(name: str) -> bool:
    import psycopg

    with psycopg.connect(host=PGHOST, user=PGUSER, dbname="postgres") as connection:
        return bool(connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone())


def measure_all(options: argparse.Namespace) -> dict[str, dict]:
    results = {}
    if options.baseline:
        with tempfile.TemporaryDirectory() as baseline_dir:
            package = exported(options.baseline, baseline_dir)
            results[f"plugin at {options.baseline}"] = measure_plugin(
                "before", options.carts, options.template, package, options.profile
            )
            if (package / "saleor_cart_recovery" / "app").is_dir():
                results[f"App at {options.baseline}"] = measure_app(
                    "app_before", options.carts, options.template, package, options.profile
                )
            else:
                print(f"{options.baseline} has no App host: only its plugin is measured")
    results["plugin"] = measure_plugin("plugin", options.carts, options.template, ROOT, options.profile)
    results["App"] = measure_app("app", options.carts, options.template, ROOT, options.profile)
    return results


if __name__ == "__main__":
    main()
