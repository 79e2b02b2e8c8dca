from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("saleor_cart_recovery", "0005_api_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="recoverymessage",
            name="handed_over_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="recoverycart",
            index=models.Index(
                condition=models.Q(("order_id", ""), _negated=True),
                fields=["order_id"],
                name="cart_recovery_cart_order",
            ),
        ),
    ]
