from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):
    # Built without locking writes to a table a live shop keeps filling; alone in its migration, so
    # a build that failed can simply be run again (Django drops nothing it did not finish).
    atomic = False

    dependencies = [("saleor_cart_recovery", "0009_worker_heartbeat")]

    operations = [
        AddIndexConcurrently(
            model_name="recoverycart",
            index=models.Index(
                fields=["channel_slug", "converted_at"],
                condition=Q(status="converted"),
                name="cart_recovery_cart_converted",
            ),
        ),
    ]
