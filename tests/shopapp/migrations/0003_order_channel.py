from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shopapp", "0002_offers")]

    operations = [
        migrations.AddField(
            model_name="shoporder",
            name="channel_slug",
            field=models.CharField(default="main", max_length=64),
        ),
    ]
