"""Celery tasks: thin shims over :mod:`dispatch` and :mod:`delivery` that take ids only."""

from celery import shared_task

from .delivery import deliver
from .dispatch import dispatch

DISPATCH_TASK = "saleor_cart_recovery.dispatch_due_reminders"
# A dispatch cycle that waited longer than its interval is dropped: the next one covers it.
DISPATCH_EXPIRES = 55


@shared_task(name=DISPATCH_TASK, ignore_result=True, expires=DISPATCH_EXPIRES)
def dispatch_due_reminders() -> str:
    return str(dispatch())


@shared_task(name="saleor_cart_recovery.send_reminder", ignore_result=True, acks_late=True)
def send_reminder(message_id: int) -> str:
    return deliver(message_id)
