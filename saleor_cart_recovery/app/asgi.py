"""The app server's ASGI application: ``uvicorn saleor_cart_recovery.app.asgi:application``."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saleor_cart_recovery.app.settings")

application = get_asgi_application()
