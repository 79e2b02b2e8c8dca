"""Django settings of the app server, read from the environment once at start.

Every variable is checked here: a missing or malformed one stops the process at start with
:class:`~django.core.exceptions.ImproperlyConfigured` naming it, instead of failing at the first
request or send. URLs are parsed by dj-database-url and dj-email-url (the parsers Saleor itself uses).
"""

import os
from urllib.parse import urlsplit

import dj_database_url
import dj_email_url
from django.core.exceptions import ImproperlyConfigured

MIN_SECRET_KEY_LENGTH = 32  # the app token at rest is encrypted with a key derived from it


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"{name} is not set: the app server needs it (see docs/app.md).")
    return value


def _http_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ImproperlyConfigured(f"{name} must be an http(s) URL without query or fragment, got {value!r}.")
    return value


def _parsed(name: str, parse, value: str):
    try:
        return parse(value)
    except Exception as exc:  # each parser raises its own kinds for an unknown scheme or a bad port
        raise ImproperlyConfigured(f"{name} is not a valid URL: {exc}") from None


SECRET_KEY = _required("SECRET_KEY")
if len(SECRET_KEY) < MIN_SECRET_KEY_LENGTH:
    raise ImproperlyConfigured(f"SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters long.")
# The app's public base URL (manifest, webhooks, links in emails); no trailing slash.
APP_URL = _http_url("APP_URL", _required("APP_URL")).rstrip("/")
# The one Saleor allowed to install this deployment, as Saleor names itself (Saleor-Api-Url).
SALEOR_API_URL = _http_url("SALEOR_API_URL", _required("SALEOR_API_URL"))

# Seconds to wait for Saleor's answer before a send batch gives its claims back for a later retry.
try:
    SALEOR_API_TIMEOUT = float(os.environ.get("SALEOR_API_TIMEOUT", "").strip() or 20)
except ValueError:
    raise ImproperlyConfigured("SALEOR_API_TIMEOUT must be a number of seconds.") from None
if not 1 <= SALEOR_API_TIMEOUT <= 120:
    raise ImproperlyConfigured("SALEOR_API_TIMEOUT must be between 1 and 120 seconds.")

_database = _parsed("DATABASE_URL", dj_database_url.parse, _required("DATABASE_URL"))
if _database.get("ENGINE") != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must name a PostgreSQL database (postgres://…).")
DATABASES = {"default": _database}

CELERY_BROKER_URL = _required("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# EMAIL_URL: the mail server for channels whose settings name none (their own smtp_url wins);
# its ``?_default_from_email=`` is their sender unless DEFAULT_FROM_EMAIL is set.
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "").strip()
if os.environ.get("EMAIL_URL", "").strip():
    _email = _parsed("EMAIL_URL", dj_email_url.parse, os.environ["EMAIL_URL"].strip())
    if "EMAIL_BACKEND" not in _email:
        raise ImproperlyConfigured(
            "EMAIL_URL is not a valid URL: use smtp://, smtps://, console:// or file://."
        )
    EMAIL_BACKEND = _email["EMAIL_BACKEND"]
    EMAIL_HOST, EMAIL_PORT = _email["EMAIL_HOST"], _email["EMAIL_PORT"]
    EMAIL_HOST_USER, EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_USER"], _email["EMAIL_HOST_PASSWORD"]
    EMAIL_USE_TLS, EMAIL_USE_SSL = _email["EMAIL_USE_TLS"], _email["EMAIL_USE_SSL"]
    EMAIL_TIMEOUT = _email["EMAIL_TIMEOUT"]
    if _email.get("EMAIL_FILE_PATH"):
        EMAIL_FILE_PATH = _email["EMAIL_FILE_PATH"]
    DEFAULT_FROM_EMAIL = DEFAULT_FROM_EMAIL or _email.get("DEFAULT_FROM_EMAIL") or ""
DEFAULT_FROM_EMAIL = DEFAULT_FROM_EMAIL or "webmaster@localhost"

DEBUG = False
ALLOWED_HOSTS = [urlsplit(APP_URL).hostname or ""] + [
    host.strip() for host in os.environ.get("ALLOWED_HOSTS", "").split(",") if host.strip()
]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django_celery_beat",
    "saleor_cart_recovery",
    "saleor_cart_recovery.app",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "saleor_cart_recovery.app.urls"
CART_RECOVERY_SHOP = "saleor_cart_recovery.app.shop.AppShop"
# Requests from behind a TLS-terminating proxy: links are built from APP_URL, never from the request.
USE_X_FORWARDED_HOST = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
