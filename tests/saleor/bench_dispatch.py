"""What both hosts' measurements share (``bench_send.py``): a loopback SMTP server in a process of its
own, and one in-process ``cart_recovery_dispatch`` timed and counted the same way whatever the host.

Imports neither Saleor nor a host: the plugin's measurement runs it in Saleor's process, the App's
in the app server's (which has no Saleor).
"""

import atexit
import io
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

# A loopback SMTP server in a process of its own (as a real one is: it takes no CPU time from the
# sender's interpreter); it appends "<client port> <recipient>" per accepted message to a file.
SMTP_SERVER = """
import sys, threading
from aiosmtpd.controller import Controller
class Log:
    async def handle_DATA(self, server, session, envelope):
        with open(sys.argv[2], "a") as log:
            log.write(f"{session.peer[1]} {envelope.rcpt_tos[0]}\\n")
        return "250 OK"
Controller(Log(), hostname="127.0.0.1", port=int(sys.argv[1])).start()
print("ready", flush=True)
threading.Event().wait()
"""


def mail_server() -> tuple[int, Path]:
    """The server's port and the file it logs each accepted message to; killed at exit."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = Path(tempfile.mkdtemp()) / "received"
    log.touch()
    server = subprocess.Popen(
        [sys.executable, "-c", SMTP_SERVER, str(port), str(log)], stdout=subprocess.PIPE, text=True
    )
    atexit.register(server.kill)
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    return port, log


def timed_dispatch(carts: int, inbox: Path, profile: Path | None = None) -> dict:
    """One ``cart_recovery_dispatch`` (plan and send every due reminder in this process), timed,
    with the SQL queries on every database alias of this process and the HTTP requests made with
    ``requests`` (the App's calls to Saleor) counted; asserts that each of the ``carts`` reminders
    arrived once. ``profile``: a cProfile of the dispatch written there (the timing then includes
    the profiler's overhead)."""
    import requests.adapters
    from django.core.management import call_command
    from django.db import connections

    queries = http_requests = 0

    def count_query(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    send = requests.adapters.HTTPAdapter.send

    def count_request(adapter, request, *args, **kwargs):
        nonlocal http_requests
        http_requests += 1
        return send(adapter, request, *args, **kwargs)

    with ExitStack() as stack:
        for alias in connections:
            stack.enter_context(connections[alias].execute_wrapper(count_query))
        requests.adapters.HTTPAdapter.send = count_request  # type: ignore[method-assign]
        stack.callback(setattr, requests.adapters.HTTPAdapter, "send", send)
        if profile is not None:
            import cProfile

            profiler = stack.enter_context(cProfile.Profile())
            stack.callback(profiler.dump_stats, profile)
        started, cpu_started = time.perf_counter(), time.process_time()
        call_command("cart_recovery_dispatch", stdout=io.StringIO())
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    received = [line.split() for line in inbox.read_text().splitlines()]
    recipients = [recipient for _, recipient in received]
    assert len(recipients) == carts == len(set(recipients)), (len(recipients), carts)
    return {
        "emails": len(recipients),
        "seconds": seconds,
        "cpu": cpu,
        "queries": queries,
        "http": http_requests,
        "connections": len({peer for peer, _ in received}),
    }
