"""Erase a shopper's carts and messages when Saleor deletes their customer account.

Saleor 3.23 calls the ``customer_deleted`` and ``account_deleted`` plugin hooks without a channel,
and its plugin manager then runs only the plugins it has loaded: global ones, and per-channel ones
only if a channel was loaded earlier in that request (``PluginsManager.get_plugins(None)``). A
``customerDelete`` or ``accountDelete`` request loads none, so a per-channel plugin like ours
never receives them. Every deletion of a ``User`` row (``customerDelete``, ``customerBulkDelete``,
``accountDelete``, ``staffDelete``) passes Django's ``post_delete``, so the adapter listens there —
whether or not the plugin is active in any channel (erasure is owed either way). It runs inside the
deleting transaction (a rolled-back deletion erases nothing), in a savepoint: a failure is logged
and never blocks or undoes the deletion.
"""

import logging

from django.db import transaction
from django.db.models.signals import post_delete
from saleor.account.models import User

from ..series.retention import erase_address

logger = logging.getLogger(__name__)


def erase_deleted_user(sender, instance: User, **kwargs) -> None:
    try:
        with transaction.atomic():
            erase_address(instance.email or "")
    except Exception:
        logger.exception("cart recovery: could not erase the data of deleted customer %s", instance.pk)


def connect() -> None:
    post_delete.connect(erase_deleted_user, sender=User, dispatch_uid="saleor_cart_recovery.erasure")
