from django.db import migrations, models


class Migration(migrations.Migration):
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
    ]
