from django.db import migrations, models
from django.db.models import Q

INDEX = "cart_recovery_msg_provider_id"


class Migration(migrations.Migration):
    # As 0012: concurrently, alone, and re-runnable after a failed build.
    atomic = False

    dependencies = [("saleor_cart_recovery", "0012_message_event_indexes")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="recoverymessage",
                    index=models.Index(
                        fields=["provider_message_id"], condition=~Q(provider_message_id=""), name=INDEX
                    ),
                )
            ],
            database_operations=[
                migrations.RunSQL(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}", migrations.RunSQL.noop),
                migrations.RunSQL(
                    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON cart_recovery_message "
                    "(provider_message_id) WHERE NOT (provider_message_id = '')",
                    f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}",
                ),
            ],
        )
    ]
