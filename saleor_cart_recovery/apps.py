from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CartRecoveryConfig(AppConfig):
    name = "saleor_cart_recovery"
    label = "saleor_cart_recovery"
    verbose_name = "Cart Recovery"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from .series.beat import after_migrate

        post_migrate.connect(after_migrate, sender=self, dispatch_uid="cart_recovery_beat")
