"""The app server's Celery app: ``celery -A saleor_cart_recovery.app.celery worker`` and ``… beat``.

Tasks are the core's (``saleor_cart_recovery.tasks``, found by autodiscovery). Beat reads its
schedule from the database (django-celery-beat), where ``migrate`` registers the same entries as in
the plugin host (:mod:`..series.beat`): the Dashboard's health check reads them there too.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saleor_cart_recovery.app.settings")

app = Celery("saleor_cart_recovery_app")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
