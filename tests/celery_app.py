"""The Celery app the core suite and the end-to-end worker use (Saleor has its own)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("cart_recovery_tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["saleor_cart_recovery"])
