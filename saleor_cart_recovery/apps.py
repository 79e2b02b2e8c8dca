from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CartRecoveryConfig(AppConfig):
    name = "saleor_cart_recovery"
    label = "saleor_cart_recovery"
    verbose_name = "Cart Recovery"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from .series.beat import register_dispatch_schedule

        post_migrate.connect(register_dispatch_schedule, sender=self, dispatch_uid="cart_recovery_beat")
