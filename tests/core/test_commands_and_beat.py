from datetime import timedelta
from io import StringIO

from django.apps import apps as global_apps
from django.core import mail
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from freezegun import freeze_time

from saleor_cart_recovery.series.beat import after_migrate, register_schedule

from .conftest import START

DISPATCH = "saleor_cart_recovery.dispatch_due_reminders"


def test_dispatch_command_sends_due_reminders_and_says_what_it_did(abandoned_cart):
    out = StringIO()
    with freeze_time(START + timedelta(hours=1)):
        call_command("cart_recovery_dispatch", stdout=out)
    assert "planned 1 message " in out.getvalue() and "sent: 1" in out.getvalue()
    assert len(mail.outbox) == 1


def test_dispatch_command_with_nothing_due(abandoned_cart):
    out = StringIO()
    with freeze_time(START):
        call_command("cart_recovery_dispatch", stdout=out)
    assert "planned 0 messages " in out.getvalue() and mail.outbox == []


def test_dispatcher_is_registered_with_beat_once(db):
    # migrate already ran the registration for the test database
    assert register_schedule() is True
    task = PeriodicTask.objects.get(name=DISPATCH)
    assert (task.task, task.interval.every, task.interval.period, task.enabled) == (
        DISPATCH,
        60,
        "seconds",
        True,
    )
    assert PeriodicTask.objects.filter(task=DISPATCH).count() == 1


def assert_one_enabled_minutely_entry():
    [entry] = PeriodicTask.objects.filter(name=DISPATCH)
    assert (entry.task, entry.enabled) == (DISPATCH, True)
    assert (entry.interval.every, entry.interval.period) == (60, "seconds")
    assert entry.crontab is None and entry.solar is None and entry.clocked is None
    assert PeriodicTask.objects.filter(task=DISPATCH).count() == 1


def test_registering_again_repairs_a_changed_entry(db):
    # given an operator disabled the entry, re-timed it to every 5 minutes and pointed it elsewhere
    entry = PeriodicTask.objects.get(name=DISPATCH)
    entry.interval, _ = IntervalSchedule.objects.get_or_create(every=5, period=IntervalSchedule.MINUTES)
    entry.enabled = False
    entry.task = "saleor_cart_recovery.some_old_task"
    entry.save()
    entry.refresh_from_db()
    assert (entry.interval.every, entry.interval.period, entry.enabled) == (5, "minutes", False)

    # when registration runs twice (two deploys)
    assert register_schedule() is True
    assert register_schedule() is True

    # then there is still exactly one row, repaired: enabled, the dispatch task, every 60 s
    assert_one_enabled_minutely_entry()


def test_the_report_rollup_runs_every_ten_minutes_off_the_dispatcher(db):
    # migrate registered it next to the dispatcher, and registering again keeps one row
    assert register_schedule() is True
    [entry] = PeriodicTask.objects.filter(name="saleor_cart_recovery.report_rollup")
    assert (entry.task, entry.enabled, entry.interval.every, entry.interval.period) == (
        "saleor_cart_recovery.report_rollup",
        True,
        600,
        "seconds",
    )


def test_migrate_registers_the_entry_but_a_test_flush_does_not(db):
    # given no entry yet
    PeriodicTask.objects.filter(name=DISPATCH).delete()
    # when post_migrate comes from a flush (no plan, no apps: a host's transactional-test teardown)
    after_migrate(using="default")
    # then nothing is written
    assert not PeriodicTask.objects.filter(name=DISPATCH).exists()
    # and when it comes from migrate, the entry is registered
    after_migrate(using="default", plan=[], apps=global_apps)
    assert PeriodicTask.objects.filter(name=DISPATCH).exists()
