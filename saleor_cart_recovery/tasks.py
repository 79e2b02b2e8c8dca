"""Celery tasks (found by Celery's autodiscovery of ``<app>.tasks``): thin shims over
:mod:`.series.dispatch`, :mod:`.series.delivery`, :mod:`.series.retention` and
:mod:`.experiments.rollup` that take ids only."""

from celery import shared_task
from django.utils import timezone

from .experiments.rollup import rollup
from .series.beat import CLEANUP, DISPATCH, ROLLUP
from .series.delivery import deliver, deliver_batch
from .series.dispatch import LEASE, dispatch
from .series.health import record_heartbeat
from .series.retention import cleanup as clean_up
from .shop import get_shop, settings_or_none

# A send task still queued this long after it was enqueued is dropped by the worker: by then the
# dispatcher's lease has run out and it has handed the message out again, so a backlog never
# holds two tasks for one message.
SEND_EXPIRES = int(LEASE.total_seconds()) - 60


@shared_task(name="saleor_cart_recovery.send_reminders", ignore_result=True, acks_late=True)
def send_reminders(message_ids: list[int]) -> dict[int, str]:
    return deliver_batch(message_ids)


@shared_task(name="saleor_cart_recovery.send_reminder", ignore_result=True, acks_late=True)
def send_reminder(message_id: int) -> str:
    """One message (tasks queued by versions before batches still run after an upgrade)."""
    return deliver(message_id)


def enqueue_send(message_ids: list[int]) -> None:
    """Hand a batch of planned messages of one channel to a worker."""
    send_reminders.apply_async((message_ids,), expires=SEND_EXPIRES)


@shared_task(name=DISPATCH.task, ignore_result=True, expires=DISPATCH.expires)
def dispatch_due_reminders() -> str:
    result = str(dispatch(send=enqueue_send))
    with get_shop().write_access():
        record_heartbeat(DISPATCH.task, timezone.now())  # the Dashboard's "worker seen" check
    return result


@shared_task(name=ROLLUP.task, ignore_result=True, expires=ROLLUP.expires)
def report_rollup() -> str:
    """Off the dispatcher's path: building a report costs what the experiment has grown to."""
    with get_shop().write_access():
        decided = rollup(timezone.now(), settings_or_none)
    return "; ".join(decided) or "no new winner"


@shared_task(name=CLEANUP.task, ignore_result=True, expires=CLEANUP.expires)
def cleanup() -> str:
    shop = get_shop()
    with shop.write_access():
        return str(clean_up(timezone.now(), settings_or_none, shop))
