from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):
    # Built without locking writes to a table a live shop keeps filling; alone in its migration, so
    # a build that failed can simply be run again (Django drops nothing it did not finish).
    atomic = False

    dependencies = [("saleor_cart_recovery", "0011_provider_events")]

    operations = [
        AddIndexConcurrently(
            model_name="recoverymessage",
            index=models.Index(
                fields=["handed_over_at"],
                condition=Q(handed_over_at__isnull=False),
                name="cart_recovery_msg_handed_over",
            ),
        ),
        AddIndexConcurrently(
            model_name="recoverymessage",
            index=models.Index(
                fields=["provider_message_id"],
                condition=~Q(provider_message_id=""),
                name="cart_recovery_msg_provider_id",
            ),
        ),
    ]
