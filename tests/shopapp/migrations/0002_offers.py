import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shopapp", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="ShopProduct",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("slug", models.SlugField()),
                ("name", models.CharField(max_length=255)),
                ("category", models.CharField(max_length=64)),
                ("variant_id", models.CharField(max_length=64)),
                ("price", models.DecimalField(decimal_places=2, max_digits=12)),
                ("published", models.BooleanField(default=True)),
                ("image_url", models.CharField(blank=True, max_length=500)),
                (
                    "channel",
                    models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to="shopapp.shopchannel"),
                ),
            ],
        ),
        migrations.CreateModel(
            name="ShopStock",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("variant_id", models.CharField(max_length=64, unique=True)),
                ("quantity", models.IntegerField()),
                ("allocated", models.IntegerField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name="ShopVoucher",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("code", models.CharField(max_length=64, unique=True)),
                ("name", models.CharField(max_length=255)),
                ("discount_type", models.CharField(max_length=16)),
                ("value", models.DecimalField(decimal_places=2, max_digits=12)),
                ("currency", models.CharField(max_length=3)),
                ("min_total", models.DecimalField(decimal_places=2, max_digits=12, null=True)),
                ("usage_limit", models.PositiveIntegerField()),
                ("expires_at", models.DateTimeField()),
                (
                    "channel",
                    models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to="shopapp.shopchannel"),
                ),
            ],
        ),
    ]
