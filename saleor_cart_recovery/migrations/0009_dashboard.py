from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):
    # The indexes are built without locking writes to tables a live shop keeps filling.
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
            index=models.Index(fields=["email"], name="cart_recovery_cart_address"),
        ),
        AddIndexConcurrently(
            model_name="recoverycart",
            index=models.Index(
                fields=["channel_slug", "converted_at"],
                condition=Q(status="converted"),
                name="cart_recovery_cart_converted",
            ),
        ),
        AddIndexConcurrently(
            model_name="suppression",
            index=models.Index(fields=["email"], name="cart_recovery_supp_address"),
        ),
    ]
