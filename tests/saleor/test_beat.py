"""The periodic dispatch entry in Saleor's beat schedule table."""

from django_celery_beat.models import IntervalSchedule
from saleor.schedulers.models import CustomPeriodicTask

from saleor_cart_recovery.series.beat import DISPATCH, ROLLUP, register_schedule

DISPATCH_TASK = DISPATCH.task

NAME = "saleor_cart_recovery.dispatch_due_reminders"


def assert_one_enabled_minutely_entry():
    [entry] = CustomPeriodicTask.objects.filter(name=NAME)
    assert entry.task == DISPATCH_TASK == NAME
    assert entry.enabled
    assert (entry.interval.every, entry.interval.period) == (60, "seconds")
    assert entry.crontab is None and entry.custom is None


def test_migrate_registered_the_dispatcher_with_saleor_beat(db):
    # given the test database was migrated (post_migrate ran our registration)
    # then Saleor's DatabaseScheduler finds one enabled entry running every 60 s
    assert_one_enabled_minutely_entry()


def test_registering_again_repairs_and_keeps_one_row(db):
    # given an operator disabled the entry, re-timed it to every 5 minutes and pointed it elsewhere
    entry = CustomPeriodicTask.objects.get(name=NAME)
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


def test_the_beat_task_runs_under_saleors_writer_restriction_and_sends(
    abandoned_cart, django_capture_on_commit_callbacks
):
    # given Saleor's Celery app runs our tasks with its task class, which in Saleor's test
    # settings raises on any database access outside allow_writer()
    from django.core import mail
    from freezegun import freeze_time
    from saleor.celeryconf import app
    from saleor.core.tasks import RestrictWriterDBTask

    from saleor_cart_recovery.tasks import dispatch_due_reminders, send_reminder

    from .utils import HOUR, T0

    assert isinstance(app.tasks[DISPATCH_TASK], RestrictWriterDBTask)
    assert isinstance(app.tasks[send_reminder.name], RestrictWriterDBTask)

    # when beat fires the dispatch task once step 1 is due (tasks run eagerly without a broker)
    with freeze_time(T0 + HOUR), django_capture_on_commit_callbacks(execute=True):
        summary = dispatch_due_reminders.delay().get()

    # then the send task it enqueued delivered the reminder
    assert "planned 1 message " in summary and "enqueued 1 send " in summary
    assert [m.to for m in mail.outbox] == [["shopper@example.com"]]


def test_the_winner_task_is_registered_and_runs_under_saleors_writer_restriction(
    abandoned_cart, enable_cart_recovery
):
    # given the plugin active in a channel with a cadence test and the automatic winner on
    from saleor.celeryconf import app
    from saleor.core.tasks import RestrictWriterDBTask

    from saleor_cart_recovery.tasks import report_rollup

    enable_cart_recovery(auto_winner="true", cadences="A: 1h, 1d, 3d | B: 2h, 2d, 4d")
    [entry] = CustomPeriodicTask.objects.filter(name=ROLLUP.task)
    assert (entry.task, entry.interval.every, entry.enabled) == (ROLLUP.task, 600, True)
    assert isinstance(app.tasks[ROLLUP.task], RestrictWriterDBTask)
    # when beat fires it, it reads the report and writes decisions through allow_writer (Saleor's
    # test settings raise otherwise); one cart proves nothing yet
    assert report_rollup.delay().get() == "no new winner"
