from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("saleor_cart_recovery", "0006_message_handed_over_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="recoverycart",
            name="order_refunded",
            field=models.DecimalField(decimal_places=3, default=0, db_default=0, max_digits=20),
        ),
        migrations.AddField(
            model_name="recoverycart",
            name="order_cancelled",
            field=models.BooleanField(default=False, db_default=False),
        ),
        migrations.CreateModel(
            name="RecoveryWinner",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("channel_slug", models.CharField(max_length=255)),
                ("experiment", models.CharField(max_length=32)),
                ("arm_set", models.CharField(max_length=16)),
                ("arm", models.CharField(max_length=16)),
                ("decided_at", models.DateTimeField()),
                ("evidence", models.JSONField(default=dict)),
            ],
            options={"db_table": "cart_recovery_winner"},
        ),
        migrations.CreateModel(
            name="RecoveryReportSnapshot",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("channel_slug", models.CharField(max_length=255, unique=True)),
                ("computed_at", models.DateTimeField()),
                ("seconds", models.FloatField()),
                ("data", models.JSONField(default=list)),
            ],
            options={"db_table": "cart_recovery_report_snapshot"},
        ),
        migrations.AddConstraint(
            model_name="recoverywinner",
            constraint=models.UniqueConstraint(
                fields=("channel_slug", "experiment", "arm_set"), name="cart_recovery_one_winner"
            ),
        ),
    ]
