"""The App host checked with Saleor's own code: its manifest through Saleor's install validation, and
its signature and token checks against what Saleor's own key manager signs and publishes."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from saleor.app.manifest_validations import clean_manifest_data
from saleor.core.jwt import create_access_token, create_access_token_for_app
from saleor.core.jwt_manager import get_jwt_manager
from saleor.webhook.transport import signature_for_payload

from saleor_cart_recovery.app.jwks import KEYS, SignatureInvalid, verify_body, verify_jwt
from saleor_cart_recovery.app.manifest import build
from saleor_cart_recovery.app.webhooks import WEBHOOKS
from saleor_cart_recovery.saleor_host import dashboard


def test_saleor_validates_the_manifest_beside_the_plugin_hosts_dashboard_app(db, permission_manage_checkouts):
    # given a shop running the plugin, with its Dashboard app installed
    dashboard.install("https://api.shop.example.com/plugins/saleor_cart_recovery/dashboard", ())
    manifest = build("https://cart-recovery.example.com")
    # when Saleor validates the App's manifest as appInstall does (its version included)
    clean_manifest_data(manifest, raise_for_saleor_version=True)
    # then it is accepted: permissions known, extensions in scope, every subscription valid on this
    # Saleor's schema, this Saleor's version required
    assert manifest["requiredSaleorVersion"]["satisfied"]
    assert {event for webhook in manifest["webhooks"] for event in webhook["events"]} == {
        webhook.event.lower() for webhook in WEBHOOKS
    }
    assert [extension["mount"] for extension in manifest["extensions"]] == [
        "navigation_customers",
        "customer_details_more_actions",
    ]


@pytest.fixture
def saleor_keys(settings):
    """This Saleor's JWKS (``get_jwt_manager().get_jwks()``) on a loopback server, and the app
    server's settings pointing at this Saleor under the name Saleor gives itself."""
    keys = json.dumps(get_jwt_manager().get_jwks()).encode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200 if self.path == "/.well-known/jwks.json" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(keys)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.PUBLIC_URL = f"http://127.0.0.1:{server.server_address[1]}"
    settings.SALEOR_API_URL = f"{settings.PUBLIC_URL}/graphql/"
    KEYS.clear()
    yield
    server.shutdown()
    server.server_close()


def test_a_body_saleor_signed_verifies_and_a_changed_one_does_not(saleor_keys):
    body = b'{"checkout": {"token": "t"}}'
    signature = signature_for_payload(body, None)  # what Saleor sends as Saleor-Signature
    verify_body(body, signature)
    with pytest.raises(SignatureInvalid):
        verify_body(body.replace(b"t", b"u"), signature)


def test_tokens_saleor_issues_verify_with_its_claims(saleor_keys, staff_user, app):
    # a staff token from tokenCreate, and the Dashboard's token for an app page
    staff = verify_jwt(create_access_token(staff_user))
    dashboard_token = verify_jwt(create_access_token_for_app(app, staff_user))
    assert (staff["type"], staff["email"], staff["is_staff"]) == ("access", staff_user.email, True)
    assert dashboard_token["type"] == "thirdparty"
    assert {"app", "permissions", "is_staff"} <= dashboard_token.keys()
    # and a token Saleor signed is never taken for a webhook signature
    with pytest.raises(SignatureInvalid):
        verify_body(b"{}", create_access_token(staff_user))
