from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):
    # The index is built without locking writes to a table a live shop keeps filling.
    atomic = False

    dependencies = [("saleor_cart_recovery", "0008_owner_controls")]

    operations = [
        migrations.CreateModel(
            name="WorkerHeartbeat",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("task", models.CharField(max_length=64, unique=True)),
                ("hostname", models.CharField(blank=True, default="", max_length=255)),
                ("at", models.DateTimeField()),
            ],
            options={"db_table": "cart_recovery_worker_heartbeat"},
        ),
        AddIndexConcurrently(
            model_name="recoverycart",
            index=models.Index(
                fields=["channel_slug", "converted_at"],
                condition=Q(status="converted"),
                name="cart_recovery_cart_converted",
            ),
        ),
    ]
