"""The App host's own state: which Saleor installed it (with its token, encrypted) and each channel's
settings, which the plugin host keeps in Saleor's plugin configuration."""

from django.db import models


class Installation(models.Model):
    """One Saleor per deployment, one app in it: the row of the Saleor at ``SALEOR_API_URL``. A new
    registration of the same app replaces the token (another app's only once this one is gone, see
    :func:`.installation.record`); an uninstall (APP_DELETED, for good; Saleor refusing the token; a
    deactivation) sets ``uninstalled_at`` and every channel stops sending until the next
    registration (or activation)."""

    saleor_api_url = models.URLField(max_length=500, unique=True)
    app_id = models.CharField(max_length=255)  # the app's global ID in Saleor (JWT ``app`` claim)
    # Fernet ciphertext of the app token (see app.token_crypto); never logged, never shown.
    token_ciphertext = models.TextField()
    permissions = models.JSONField(default=list)  # the permission codes Saleor granted
    # The Dashboard origins allowed to frame our pages (empty: any), set by cart_recovery_dashboard.
    dashboard_origins = models.JSONField(default=list)
    installed_at = models.DateTimeField()
    uninstalled_at = models.DateTimeField(null=True, blank=True)
    uninstall_reason = models.CharField(max_length=255, blank=True, default="")
    # ``issuedAt`` of the last APP_STATUS_CHANGED applied: an older one delivered late is ignored.
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "cart_recovery_app_installation"

    def __str__(self) -> str:  # never the token
        state = "uninstalled" if self.uninstalled_at else "installed"
        return f"{self.saleor_api_url} ({state})"

    @property
    def installed(self) -> bool:
        return self.uninstalled_at is None


class ChannelSettings(models.Model):
    """A channel's settings as ``[{"name", "value"}]`` strings (the shape Saleor stores a plugin's
    configuration in, so :meth:`RecoverySettings.from_plugin_configuration` reads both) and whether
    Cart Recovery is active there. Written only through validation (the settings form and
    ``updateSettings``): a value that does not parse never gets here."""

    channel_slug = models.CharField(max_length=255, unique=True)
    configuration = models.JSONField(default=list)
    active = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "cart_recovery_app_channel_settings"

    def __str__(self) -> str:
        return f"{self.channel_slug} ({'active' if self.active else 'inactive'})"
