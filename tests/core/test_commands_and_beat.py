from datetime import timedelta
from io import StringIO

from django.core import mail
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask
from freezegun import freeze_time

from saleor_cart_recovery.series.beat import register_dispatch_schedule

from .conftest import START


def test_dispatch_command_sends_due_reminders_and_says_what_it_did(abandoned_cart):
    out = StringIO()
    with freeze_time(START + timedelta(hours=1)):
        call_command("cart_recovery_dispatch", stdout=out)
    assert "planned 1 message(s)" in out.getvalue() and "sent: 1" in out.getvalue()
    assert len(mail.outbox) == 1


def test_dispatch_command_with_nothing_due(abandoned_cart):
    out = StringIO()
    with freeze_time(START):
        call_command("cart_recovery_dispatch", stdout=out)
    assert "planned 0 message(s)" in out.getvalue() and mail.outbox == []


def test_dispatcher_is_registered_with_beat_once(db):
    # migrate already ran the registration for the test database
    assert register_dispatch_schedule() is True
    task = PeriodicTask.objects.get(name="saleor_cart_recovery.dispatch_due_reminders")
    assert (task.task, task.interval.every, task.interval.period, task.enabled) == (
        "saleor_cart_recovery.dispatch_due_reminders",
        60,
        "seconds",
        True,
    )
    assert PeriodicTask.objects.filter(task="saleor_cart_recovery.dispatch_due_reminders").count() == 1
