"""Register the dispatcher with django-celery-beat, which Saleor's beat reads its schedule from.

Runs after every ``migrate`` and is idempotent. Inside Saleor the scheduler reads Saleor's own
``schedulers.CustomPeriodicTask`` (a subclass of django-celery-beat's ``PeriodicTask``); elsewhere
the plain model is used. Models are looked up by app label, so nothing here imports Saleor.
"""

import json

from django.apps import apps as global_apps

# The Celery task's name (``tasks.dispatch_due_reminders``) and the beat entry's name.
DISPATCH_TASK = "saleor_cart_recovery.dispatch_due_reminders"
INTERVAL_SECONDS = 60
# A dispatch cycle that waited longer than its interval is dropped: the next one covers it.
DISPATCH_EXPIRES = 55


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
    register_dispatch_schedule(apps=kwargs["apps"], using=kwargs.get("using", "default"))


def register_dispatch_schedule(apps=global_apps, using="default") -> bool:
    """Create or repair the every-minute dispatch entry; ``False`` when no beat models exist."""
    task_model = periodic_task_model(apps)
    if task_model is None:
        return False
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    interval, _ = interval_model.objects.using(using).get_or_create(every=INTERVAL_SECONDS, period="seconds")
    task_model.objects.using(using).update_or_create(
        name=DISPATCH_TASK,
        defaults={
            "task": DISPATCH_TASK,
            "interval": interval,
            "enabled": True,
            "expire_seconds": DISPATCH_EXPIRES,
            "kwargs": json.dumps({}),
            "description": "Cart Recovery: plan due reminders and hand them to workers.",
        },
    )
    return True
