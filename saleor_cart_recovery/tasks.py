"""Celery tasks (found by Celery's autodiscovery of ``<app>.tasks``): thin shims over
:mod:`.series.dispatch` and :mod:`.series.delivery` that take ids only."""

from celery import shared_task

from .series.beat import DISPATCH_EXPIRES, DISPATCH_TASK
from .series.delivery import deliver
from .series.dispatch import dispatch


@shared_task(name="saleor_cart_recovery.send_reminder", ignore_result=True, acks_late=True)
def send_reminder(message_id: int) -> str:
    return deliver(message_id)


def enqueue_send(message_id: int) -> None:
    """Hand one claimed message to a worker."""
    send_reminder.delay(message_id)


@shared_task(name=DISPATCH_TASK, ignore_result=True, expires=DISPATCH_EXPIRES)
def dispatch_due_reminders() -> str:
    return str(dispatch(send=enqueue_send))
