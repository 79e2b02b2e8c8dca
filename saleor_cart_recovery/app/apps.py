from django.apps import AppConfig


class CartRecoveryAppConfig(AppConfig):
    """The App host's own tables (the installation and the per-channel settings); the core's come
    from the ``saleor_cart_recovery`` app installed beside it."""

    name = "saleor_cart_recovery.app"
    label = "cart_recovery_app"
    verbose_name = "Cart Recovery (Saleor App host)"
    default_auto_field = "django.db.models.BigAutoField"
