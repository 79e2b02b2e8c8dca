"""Django settings for the core suite: real PostgreSQL, no Saleor, a database-backed test shop."""

import os

SECRET_KEY = "cart-recovery-tests"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django_celery_beat",
    "saleor_cart_recovery",
    "saleor_cart_recovery.app",  # the App host's tables (its tests switch CART_RECOVERY_SHOP to it)
    "tests.shopapp",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("CART_RECOVERY_DB_NAME", "cart_recovery"),
        "HOST": os.environ.get("CART_RECOVERY_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("CART_RECOVERY_DB_PORT", "5432"),
        "USER": os.environ.get("CART_RECOVERY_DB_USER", "postgres"),
        "PASSWORD": os.environ.get("CART_RECOVERY_DB_PASSWORD", ""),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "tests.shopapp.urls"
MIDDLEWARE: list[str] = []
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DEFAULT_FROM_EMAIL = "Test Shop <shop@example.com>"
CART_RECOVERY_SHOP = "tests.shopapp.shop.DbShop"
PUBLIC_URL = "http://shop.test"
# The App host's settings (tests/app points them at loopback servers).
APP_URL = "http://app.test"
SALEOR_API_URL = "http://saleor.test/graphql/"
# The chaos suite runs workers with a short SMTP timeout to reach "the server stalled" quickly.
CART_RECOVERY_SMTP_TIMEOUT = float(os.environ.get("CART_RECOVERY_SMTP_TIMEOUT", "15"))

CELERY_BROKER_URL = os.environ.get("CART_RECOVERY_BROKER_URL", "redis://127.0.0.1:6379/15")
# Tasks run inline in the core suite; the end-to-end worker sets CART_RECOVERY_CELERY_EAGER=0
# (the end-to-end test overrides these settings in its own process; Celery reads them live).
CELERY_TASK_ALWAYS_EAGER = os.environ.get("CART_RECOVERY_CELERY_EAGER", "1") != "0"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"saleor_cart_recovery": {"handlers": ["console"], "level": "WARNING"}},
}
