from django.db import migrations, models
from django.db.models import Q

INDEX = "cart_recovery_msg_handed_over"


class Migration(migrations.Migration):
    # Built without locking writes to a table a live shop keeps filling. One index per migration, and
    # idempotent SQL: a build that failed or was killed leaves an INVALID index behind, which the
    # next run drops before building it again (AddIndexConcurrently would stop at "already exists").
    atomic = False

    dependencies = [("saleor_cart_recovery", "0011_provider_events")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="recoverymessage",
                    index=models.Index(
                        fields=["handed_over_at"], condition=Q(handed_over_at__isnull=False), name=INDEX
                    ),
                )
            ],
            database_operations=[
                migrations.RunSQL(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}", migrations.RunSQL.noop),
                migrations.RunSQL(
                    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON cart_recovery_message "
                    "(handed_over_at) WHERE handed_over_at IS NOT NULL",
                    f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}",
                ),
            ],
        )
    ]
