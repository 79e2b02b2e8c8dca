"""A minimal shop for the core suite: channels with plugin configuration, checkouts, orders."""

from django.db import models


class ShopChannel(models.Model):
    slug = models.SlugField(unique=True)
    active = models.BooleanField(default=True)
    configuration = models.JSONField(default=list)


class ShopCheckout(models.Model):
    token = models.CharField(max_length=36, unique=True)
    channel = models.ForeignKey(ShopChannel, on_delete=models.CASCADE)
    email = models.CharField(max_length=254, blank=True)
    language_code = models.CharField(max_length=35, default="en")
    currency = models.CharField(max_length=3, default="USD")
    # What the sending rules read: metadata of the checkout and of its customer account, the
    # address's first name and country.
    metadata = models.JSONField(default=dict)
    account_metadata = models.JSONField(default=dict)
    first_name = models.CharField(max_length=64, blank=True)
    country = models.CharField(max_length=2, blank=True)


class ShopLine(models.Model):
    checkout = models.ForeignKey(ShopCheckout, related_name="lines", on_delete=models.CASCADE)
    variant_id = models.CharField(max_length=64)
    product_name = models.CharField(max_length=255)
    variant_name = models.CharField(max_length=255, blank=True)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    image_url = models.CharField(max_length=500, blank=True)


class ShopOrder(models.Model):
    checkout_token = models.CharField(max_length=36, blank=True)
    channel_slug = models.CharField(max_length=64, default="main")
    email = models.CharField(max_length=254)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    created_at = models.DateTimeField()


class ShopProduct(models.Model):
    """A single-variant product listed in one channel (enough for upsell and urgency tests)."""

    channel = models.ForeignKey(ShopChannel, on_delete=models.CASCADE)
    slug = models.SlugField()
    name = models.CharField(max_length=255)
    category = models.CharField(max_length=64)
    variant_id = models.CharField(max_length=64)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    published = models.BooleanField(default=True)
    image_url = models.CharField(max_length=500, blank=True)


class ShopStock(models.Model):
    variant_id = models.CharField(max_length=64, unique=True)
    quantity = models.IntegerField()
    allocated = models.IntegerField(default=0)


class ShopVoucher(models.Model):
    code = models.CharField(max_length=64, unique=True)
    channel = models.ForeignKey(ShopChannel, on_delete=models.CASCADE)
    name = models.CharField(max_length=255)
    discount_type = models.CharField(max_length=16)
    value = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    min_total = models.DecimalField(max_digits=12, decimal_places=2, null=True)
    usage_limit = models.PositiveIntegerField()
    used = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField()
