"""The App host checked with Saleor's own code: its manifest through Saleor's install validation,
its signature and token checks against what Saleor's own key manager signs and publishes, and the
erasure webhooks as Saleor sends them when an account is deleted."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from uuid import uuid4

import pytest
from django.utils import timezone
from saleor.app.manifest_validations import clean_manifest_data
from saleor.app.models import App
from saleor.core.jwt import create_access_token, create_access_token_for_app
from saleor.core.jwt_manager import get_jwt_manager
from saleor.core.tokens import account_delete_token_generator
from saleor.graphql.core.utils import to_global_id_or_none
from saleor.permission.models import Permission
from saleor.webhook.models import Webhook
from saleor.webhook.transport import signature_for_payload

from saleor_cart_recovery.app.jwks import KEYS, SignatureInvalid, verify_body, verify_jwt
from saleor_cart_recovery.app.manifest import build
from saleor_cart_recovery.app.webhooks import BY_PATH, WEBHOOKS
from saleor_cart_recovery.models import RecoveryCart
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


@pytest.fixture
def webhook_target():
    """A loopback server standing in for the app server's webhook URLs: what Saleor posts there."""
    received: list[tuple[str, dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append((self.path, dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def installed_app(settings, saleor_keys, webhook_target):
    """The App as Saleor holds it after an install from the manifest: its permissions, and its two
    erasure webhooks aimed at ``webhook_target``; Saleor's webhook plugin on, loopback allowed."""
    settings.PLUGINS = ["saleor.plugins.webhook.plugin.WebhookPlugin"]
    settings.HTTP_IP_FILTER_ALLOW_LOOPBACK_IPS = True
    url, _ = webhook_target
    manifest = build(url)
    app = App.objects.create(name=manifest["name"], identifier=manifest["id"], is_active=True)
    app.permissions.add(*Permission.objects.filter(codename__in=[p.lower() for p in manifest["permissions"]]))
    for entry in manifest["webhooks"]:
        if entry["asyncEvents"][0] in ("CUSTOMER_DELETED", "ACCOUNT_DELETED"):
            webhook = Webhook.objects.create(
                app=app, name=entry["name"], target_url=entry["targetUrl"], subscription_query=entry["query"]
            )
            webhook.events.create(event_type=entry["asyncEvents"][0].lower())
    return app


def _delete_by_staff(staff_api_client, customer_user, permission_manage_users):
    staff_api_client.user.user_permissions.add(permission_manage_users)
    query = "mutation ($id: ID!) { customerDelete(id: $id) { errors { field message } } }"
    response = staff_api_client.post_graphql(query, {"id": to_global_id_or_none(customer_user)})
    assert response.json()["data"]["customerDelete"]["errors"] == []


def _delete_by_the_customer(user_api_client, customer_user):
    query = "mutation ($token: String!) { accountDelete(token: $token) { errors { field message } } }"
    token = account_delete_token_generator.make_token(customer_user)
    response = user_api_client.post_graphql(query, {"token": token})
    assert response.json()["data"]["accountDelete"]["errors"] == []


@pytest.mark.parametrize(
    ("event", "delete"),
    [
        ("customer_deleted", lambda request: _delete_by_staff(
            request.getfixturevalue("staff_api_client"),
            request.getfixturevalue("customer_user"),
            request.getfixturevalue("permission_manage_users"),
        )),
        ("account_deleted", lambda request: _delete_by_the_customer(
            request.getfixturevalue("user_api_client"), request.getfixturevalue("customer_user"),
        )),
    ],
)  # fmt: skip
def test_saleor_sends_each_deletion_with_the_address_the_erasure_needs(
    request, installed_app, webhook_target, customer_user, event, delete
):
    _, received = webhook_target
    email = customer_user.email
    # when the account is deleted, by staff (customerDelete) or by the customer (accountDelete);
    # Saleor's test client runs the mutation's on-commit callbacks, which trigger the webhook
    delete(request)
    # then Saleor posts that webhook once, signed, with the deleted account's address
    [(path, headers, body)] = received
    assert (path, headers["Saleor-Event"]) == (f"/webhooks/{event.replace('_', '-')}", event)
    verify_body(body, headers["Saleor-Signature"])
    payload = json.loads(body)
    assert payload == {"user": {"email": email}}
    # and the App's handler for it erases that address's carts
    RecoveryCart.objects.create(
        checkout_token=str(uuid4()), channel_slug="main", email=email, last_activity_at=timezone.now(),
        created_at=timezone.now(), updated_at=timezone.now(),
    )  # fmt: skip
    BY_PATH[path.lstrip("/")].handler(payload)
    assert not RecoveryCart.objects.filter(email=email).exists()
