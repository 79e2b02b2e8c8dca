"""The App manifest Saleor reads at install (``GET {APP_URL}/api/manifest``), built from the webhook
definitions and the Dashboard extensions, so what Saleor subscribes and what we handle are one list.

Identifier: ``saleor-cart-recovery-app``, not the plugin host's ``saleor-cart-recovery``. Saleor
refuses to install an app whose identifier an installed app already has
(``saleor/app/manifest_validations.py``), and a shop that runs the plugin has the plugin's local
Dashboard app under ``saleor-cart-recovery``: with a distinct identifier a shop can install the App
while the plugin still runs (to move over with its data, docs/app.md), and Saleor never mistakes one
host's app for the other's.
"""

from typing import Any

from ..saleor_versions import REQUIRED_SALEOR_VERSION
from .webhooks import WEBHOOKS

APP_IDENTIFIER = "saleor-cart-recovery-app"
APP_NAME = "Cart Recovery"
VERSION = "0.1.0"

# Each permission and why (docs/app.md repeats the reasons for the owner who grants them):
PERMISSIONS = (
    "MANAGE_CHECKOUTS",  # read checkouts (carts, lines, prices, metadata) and their webhooks; gates our pages
    "MANAGE_ORDERS",  # read orders by checkout and by shopper (never a send after purchase), order webhooks
    "MANAGE_USERS",  # read customers (email, consent metadata) and the CUSTOMER_DELETED webhook for erasure
    "MANAGE_DISCOUNTS",  # create the single-use coupons and delete the expired unused ones
    "MANAGE_PRODUCTS",  # read stock and products for truthful urgency and upsell
)
EXTENSION_PERMISSION = "MANAGE_CHECKOUTS"

# (identifier, label, mount, target, path under APP_URL): the same pages the plugin host installs
# (saleor_host/dashboard.py). An app page's URL is relative to appUrl, which is the pages' shell.
EXTENSIONS = (
    ("cart-recovery-page", "Cart recovery", "NAVIGATION_CUSTOMERS", "APP_PAGE", "/"),
    ("cart-recovery-customer", "Cart recovery", "CUSTOMER_DETAILS_MORE_ACTIONS", "POPUP", "/customer"),
)


def dashboard_url(app_url: str) -> str:
    return f"{app_url}/dashboard"


def build(app_url: str) -> dict[str, Any]:
    """The manifest for a deployment reachable at ``app_url`` (no trailing slash)."""
    return {
        "id": APP_IDENTIFIER,
        "name": APP_NAME,
        "version": VERSION,
        "about": (
            "Abandoned-cart recovery emails: a timed series with the live cart and a restoring link, "
            "stopped at purchase; A/B tests, a holdout and honest revenue figures."
        ),
        "author": "saleor-cart-recovery",
        "requiredSaleorVersion": REQUIRED_SALEOR_VERSION,
        "permissions": list(PERMISSIONS),
        "appUrl": dashboard_url(app_url),
        "tokenTargetUrl": f"{app_url}/api/register",
        "homepageUrl": app_url,
        "extensions": [
            {
                "identifier": identifier,
                "label": label,
                "mount": mount,
                "target": target,
                "permissions": [EXTENSION_PERMISSION],
                "url": path if target == "APP_PAGE" else f"{dashboard_url(app_url)}{path}",
            }
            for identifier, label, mount, target, path in EXTENSIONS
        ],
        "webhooks": [webhook.manifest_entry(app_url) for webhook in WEBHOOKS],
    }
