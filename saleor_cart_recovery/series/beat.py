"""Register the periodic tasks with django-celery-beat, which Saleor's beat reads its schedule from.

Runs after every ``migrate`` and is idempotent. Inside Saleor the scheduler reads Saleor's own
``schedulers.CustomPeriodicTask`` (a subclass of django-celery-beat's ``PeriodicTask``); elsewhere
the plain model is used. Models are looked up by app label, so nothing here imports Saleor.
"""

import json
from dataclasses import dataclass

from django.apps import apps as global_apps


@dataclass(frozen=True)
class Periodic:
    task: str  # the Celery task's name, also the beat entry's name
    every: int  # seconds
    expires: int  # a run that waited this long is dropped: the next one covers it
    description: str


DISPATCH = Periodic(
    "saleor_cart_recovery.dispatch_due_reminders",
    60,
    55,
    "Cart Recovery: plan due reminders and hand them to workers.",
)
ROLLUP = Periodic(
    "saleor_cart_recovery.report_rollup",
    600,
    540,
    "Cart Recovery: store each channel's report and record the automatic winners it proves.",
)
CLEANUP = Periodic(
    "saleor_cart_recovery.cleanup",
    86400,
    3600,
    "Cart Recovery: delete carts past each channel's retention and the coupons that expired unused.",
)
SCHEDULE = (DISPATCH, ROLLUP, CLEANUP)


def periodic_task_model(apps=global_apps):
    for label, model in (("schedulers", "CustomPeriodicTask"), ("django_celery_beat", "PeriodicTask")):
        try:
            return apps.get_model(label, model)
        except LookupError:
            continue
    return None


def after_migrate(sender=None, **kwargs) -> None:
    """``post_migrate`` receiver: register after a real ``migrate`` (which sends ``plan`` and the
    migrated ``apps``), never after a test flush (``flush`` sends neither, inside a host's
    transactional-test teardown, where writing would break the host's own tests)."""
    if "plan" not in kwargs or "apps" not in kwargs:
        return
    register_schedule(apps=kwargs["apps"], using=kwargs.get("using", "default"))


def register_schedule(apps=global_apps, using="default") -> bool:
    """Create or repair every entry of :data:`SCHEDULE`; ``False`` when no beat models exist."""
    task_model = periodic_task_model(apps)
    if task_model is None:
        return False
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    for entry in SCHEDULE:
        interval, _ = interval_model.objects.using(using).get_or_create(every=entry.every, period="seconds")
        task_model.objects.using(using).update_or_create(
            name=entry.task,
            defaults={
                "task": entry.task,
                "interval": interval,
                "enabled": True,
                "expire_seconds": entry.expires,
                "kwargs": json.dumps({}),
                "description": entry.description,
            },
        )
    return True
