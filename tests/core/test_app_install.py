"""The App host's install: the manifest Saleor reads, the registration Saleor posts, the uninstall."""

import json
import logging
from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.forms.models import model_to_dict
from graphql import parse
from graphql.language import ast
from semantic_version import NpmSpec, Version
from semantic_version.base import Range

from saleor_cart_recovery.app import installation
from saleor_cart_recovery.app.client import WHO_AM_I, SaleorClient, SaleorUnavailable
from saleor_cart_recovery.app.installation import NotInstalled
from saleor_cart_recovery.app.manifest import APP_IDENTIFIER, build
from saleor_cart_recovery.app.models import Installation
from saleor_cart_recovery.app.webhooks import WEBHOOKS

from .app_host import APP_ID, APP_TOKEN, PERMISSIONS, deliver, register

# Saleor 3.23's rules (saleor/app/manifest_schema.py, manifest_validations.py, types.py, the
# AppExtension mount migrations, permission/enums.py), restated for a suite that runs without Saleor;
# tests/saleor runs the manifest through Saleor's own validation.
REQUIRED = {"id", "name", "version"}
MOUNTS = {"NAVIGATION_CUSTOMERS", "CUSTOMER_DETAILS_MORE_ACTIONS"}  # the two we use, both in 3.23's list
TARGETS = {"POPUP", "APP_PAGE", "NEW_TAB", "WIDGET"}
SALEOR_PERMISSIONS = {
    "MANAGE_CHECKOUTS", "MANAGE_ORDERS", "MANAGE_USERS", "MANAGE_DISCOUNTS", "MANAGE_PRODUCTS",
    "MANAGE_CHANNELS", "MANAGE_PLUGINS", "MANAGE_APPS", "MANAGE_STAFF", "MANAGE_SETTINGS",
}  # fmt: skip
ASYNC_EVENTS = {
    "CHECKOUT_CREATED", "CHECKOUT_UPDATED", "ORDER_CREATED", "ORDER_CANCELLED", "ORDER_REFUNDED",
    "ORDER_FULLY_REFUNDED", "CUSTOMER_DELETED", "ACCOUNT_DELETED", "APP_DELETED", "APP_STATUS_CHANGED",
}  # fmt: skip


def test_the_manifest_is_what_saleor_accepts(app_client):
    # when Saleor's install task reads it
    response = app_client.get("/api/manifest")
    # then it has what Saleor requires and nothing Saleor would refuse
    assert response.status_code == 200
    manifest = response.json()
    assert manifest == build("http://app.test")
    assert manifest.keys() >= REQUIRED
    assert set(manifest["permissions"]) <= SALEOR_PERMISSIONS
    assert manifest["tokenTargetUrl"] == "http://app.test/api/register"
    for extension in manifest["extensions"]:
        assert extension["mount"] in MOUNTS and extension["target"] in TARGETS
        assert set(extension["permissions"]) <= set(manifest["permissions"])  # OUT_OF_SCOPE_PERMISSION
        if extension["target"] == "APP_PAGE":  # relative to appUrl
            assert extension["url"].startswith("/")
        else:
            assert urlsplit(extension["url"]).netloc == "app.test"
    assert len({e["identifier"] for e in manifest["extensions"]}) == len(manifest["extensions"])


class SaleorVersionSpec(NpmSpec):
    """saleor/app/manifest_validations.py's RequiredSaleorVersionSpec: pre-releases match naturally."""

    class Parser(NpmSpec.Parser):
        @classmethod
        def range(cls, operator, target):
            return Range(operator, target, prerelease_policy=Range.PRERELEASE_NATURAL)


def test_the_manifest_supports_the_saleor_versions_we_test():
    spec = SaleorVersionSpec(build("http://app.test")["requiredSaleorVersion"])
    # 3.23.28 is the release we test; 3.24.0-a.0 is Saleor's development branch
    assert [spec.match(Version(v)) for v in ("3.23.0", "3.23.28", "3.24.0-a.0", "3.24.5")] == [True] * 4
    assert [spec.match(Version(v)) for v in ("3.22.9", "3.25.0-a.0", "3.25.0", "4.0.0")] == [False] * 4


def test_the_app_identifier_differs_from_the_plugin_hosts_dashboard_app():
    # Saleor refuses an app whose identifier an installed app has: a plugin shop has the plugin's
    # Dashboard app, "saleor-cart-recovery" (DESIGN.md's contract)
    assert APP_IDENTIFIER != "saleor-cart-recovery"


@pytest.mark.parametrize("webhook", WEBHOOKS, ids=lambda webhook: f"{webhook.event.lower()}_case")
def test_each_webhook_subscribes_exactly_to_what_its_handler_reads(webhook):
    entry = next(e for e in build("http://app.test")["webhooks"] if e["asyncEvents"] == [webhook.event])
    assert webhook.event in ASYNC_EVENTS
    assert entry["targetUrl"] == f"http://app.test/{webhook.path}"
    # one subscription on the event's type, as Saleor's SubscriptionQuery parses it (and the
    # fragments it spreads: an order's fields are the API's, read by the same function)
    document = parse(entry["query"])
    (operation,) = [d for d in document.definitions if isinstance(d, ast.OperationDefinition)]
    assert operation.operation == "subscription"
    (event,) = operation.selection_set.selections
    (on_type,) = event.selection_set.selections
    assert isinstance(on_type, ast.InlineFragment) and on_type.type_condition.name.value == webhook.event_type


def test_register_stores_the_token_encrypted_and_never_logs_it(app_client, saleor, caplog):
    # when the Saleor this deployment serves posts its token
    with caplog.at_level(logging.DEBUG):
        response = register(app_client, saleor)
    # then the app is installed with what Saleor says about the token
    assert (response.status_code, response.json()) == (200, {"success": True})
    stored = Installation.objects.get()
    assert (stored.saleor_api_url, stored.app_id, stored.permissions) == (saleor.api_url, APP_ID, PERMISSIONS)
    assert stored.installed and installation.current().token == APP_TOKEN
    # and the token is nowhere in clear: not at rest, not in a log, not in repr
    assert APP_TOKEN not in stored.token_ciphertext and APP_TOKEN not in str(stored)
    assert APP_TOKEN not in caplog.text and APP_TOKEN not in repr(installation.current())
    # and Saleor's keys were fetched, so its webhooks can be checked
    assert saleor.jwks_fetches == 1


@pytest.mark.parametrize(
    ("api_url", "token", "status"),
    [
        ("http://other-saleor.test/graphql/", APP_TOKEN, 403),  # another Saleor
        (None, "a-token-saleor-never-issued", 403),  # Saleor does not confirm it
        (None, "", 400),
        (None, "t" * 10_000, 400),
        (None, "€" * 30, 400),  # no Authorization header can carry it
        (None, "\ud800", 400),  # a lone surrogate, from a JSON escape
        (None, "app token", 400),
    ],
    ids=[
        "foreign_saleor_case",
        "unknown_token_case",
        "empty_token_case",
        "absurd_token_case",
        "non_ascii_token_case",
        "lone_surrogate_token_case",
        "token_with_a_space_case",
    ],
)
def test_register_refuses_and_stores_nothing(app_client, saleor, api_url, token, status):
    assert register(app_client, saleor, token=token, api_url=api_url).status_code == status
    assert not Installation.objects.exists()
    assert saleor.jwks_fetches == 0  # a token Saleor did not confirm makes us fetch nothing


@pytest.mark.parametrize(
    ("identifier", "manifest_url"),
    [
        ("another-app", None),  # a local app, or another vendor's, in the same Saleor
        (None, "http://elsewhere.test/api/manifest"),  # another deployment's installation
    ],
    ids=["other_identifier_case", "other_manifest_url_case"],
)
def test_register_refuses_the_token_of_an_app_not_installed_from_our_manifest(
    app_client, saleor, identifier, manifest_url
):
    # given an app Saleor accepts, but did not install from this deployment's manifest
    token = saleor.add_app(OTHER_APP_ID, identifier=identifier, manifest_url=manifest_url)
    # when its token is posted to the registration
    response = register(app_client, saleor, token=token)
    # then it is refused, saying which manifest counts, and nothing is stored or fetched
    assert response.status_code == 403
    assert "http://app.test/api/manifest" in response.json()["error"]
    assert not Installation.objects.exists() and saleor.jwks_fetches == 0


def test_register_accepts_the_manifest_url_with_a_trailing_slash(app_client, saleor):
    saleor.manifest_url = "http://app.test/api/manifest/"
    assert register(app_client, saleor).status_code == 200


def test_register_refusals_speak_the_requests_language(app_client, saleor):
    # Saleor sends no Accept-Language (English); a person trying it by hand reads their own
    english = register(app_client, saleor, token="")
    turkish = app_client.post(
        "/api/register",
        data=json.dumps({"auth_token": ""}),
        content_type="application/json",
        headers={"Saleor-Api-Url": "http://other-saleor.test/graphql/", "Accept-Language": "tr"},
    )
    assert english.json() == {"error": "auth_token: 1 to 255 printable ASCII characters without spaces"}
    assert turkish.json() == {"error": "Saleor-Api-Url bu uygulamanın hizmet verdiği Saleor değil"}


def test_register_without_the_saleor_header_or_body_is_refused(app_client, saleor):
    assert app_client.post("/api/register", data="{}", content_type="application/json").status_code == 403
    response = app_client.post(
        "/api/register",
        data="not json",
        content_type="application/json",
        headers={"Saleor-Api-Url": saleor.api_url},
    )
    assert response.status_code == 400
    assert app_client.get("/api/register").status_code == 405
    assert not Installation.objects.exists()


def test_register_while_saleor_is_unreachable_answers_503(app_client, saleor):
    saleor.close()
    assert register(app_client, saleor).status_code == 503
    assert not Installation.objects.exists()


@pytest.mark.parametrize("token", ["€uro", "\ud800"])
def test_a_token_no_header_can_carry_is_saleor_unavailable_not_a_crash(saleor, token):
    with pytest.raises(SaleorUnavailable):
        SaleorClient(saleor.api_url, token).execute(WHO_AM_I)


def test_uninstalled_then_registered_again_is_installed(installed, saleor):
    # given an installation that Saleor deleted
    assert installation.delete(APP_ID)
    assert not installation.delete(APP_ID)  # once
    assert installation.current() is None
    # when Saleor installs the app again
    assert register(installed, saleor).status_code == 200
    # then it is installed, one row for the one Saleor
    stored = Installation.objects.get()
    assert (stored.installed, stored.uninstall_reason) == (True, "")


OTHER_APP_ID = "QXBwOjk5"  # App:99


def _row() -> dict:
    return model_to_dict(Installation.objects.get())


def test_another_app_cannot_take_over_an_installation_saleor_still_accepts(installed, saleor):
    # given the installed app, whose token Saleor accepts, and a second app made in the same Saleor
    before = _row()
    other_token = saleor.add_app(OTHER_APP_ID)
    # when that app's token is posted to the registration
    response = register(installed, saleor, token=other_token)
    # then it is refused, saying why and what to do, and the installation is as it was
    assert response.status_code == 409
    assert OTHER_APP_ID not in response.json()["error"] and APP_ID in response.json()["error"]
    assert "delete that app" in response.json()["error"]
    assert _row() == before
    assert installation.current().token == APP_TOKEN


def test_an_installed_token_saleor_no_longer_names_as_our_app_does_not_hold_the_installation(
    installed, saleor
):
    # given the installed app's token, which Saleor now answers for as an app of another manifest
    saleor.manifest_url = "http://elsewhere.test/api/manifest"
    # when our app registers again as another app (installed from our manifest)
    token = saleor.add_app(OTHER_APP_ID, manifest_url="http://app.test/api/manifest")
    # then the old holder does not count: the registration replaces it
    assert register(installed, saleor, token=token).status_code == 200
    assert installation.current().app_id == OTHER_APP_ID


def test_the_installed_app_may_register_again_with_a_new_token(installed, saleor):
    # when Saleor posts a new token of the same app (Saleor names the same app ID for it)
    new_token = saleor.add_app(APP_ID)
    assert register(installed, saleor, token=new_token).status_code == 200
    # then the new token replaces the old one
    assert installation.current().token == new_token and installation.current().app_id == APP_ID


@pytest.mark.parametrize(
    "gone",
    [
        lambda client, saleor: (  # Saleor deleted the app (its token with it), then said so
            saleor.revoke(),
            deliver(client, saleor, "app_deleted", {"app": {"id": APP_ID}}),
        ),
        lambda client, saleor: saleor.revoke(),  # deleted, and its APP_DELETED never arrived
    ],
    ids=["app_deleted_case", "token_refused_by_saleor_case"],
)
def test_another_app_may_install_once_the_installed_one_is_gone(installed, saleor, gone):
    gone(installed, saleor)
    other_token = saleor.add_app(OTHER_APP_ID)
    assert register(installed, saleor, token=other_token).status_code == 200
    found = installation.current()
    assert (found.app_id, found.token) == (OTHER_APP_ID, other_token)


def test_a_token_refused_after_a_new_registration_leaves_the_new_one_installed(installed, saleor):
    # given a worker still holding the installation's old token, and a new registration meanwhile
    old = installation.current()
    assert register(installed, saleor, token=saleor.add_app(APP_ID)).status_code == 200
    # when Saleor refuses the old token
    assert not installation.token_refused(old, "Invalid token")
    # then the new registration stays installed; refusing its own token uninstalls it
    assert installation.current() is not None
    assert installation.token_refused(installation.current(), "Invalid token")
    assert installation.current() is None


def test_the_dashboard_command_sets_which_dashboards_may_frame_the_pages(installed):
    # when the operator names the Dashboard's origin
    out = StringIO()
    call_command("cart_recovery_dashboard", "--dashboard-origin", "https://dash.example.com", stdout=out)
    # then the pages (made by Saleor from the manifest) may be framed by it only
    assert f"the Cart Recovery app {APP_ID} at http://app.test/dashboard" in out.getvalue()
    shell = installed.get("/dashboard/")
    assert shell.status_code == 200
    assert shell["Content-Security-Policy"].endswith("frame-ancestors https://dash.example.com")


def test_the_dashboard_command_before_the_install_says_how_to_install(app_client):
    with pytest.raises(NotInstalled, match="Install from manifest"):
        call_command("cart_recovery_dashboard", stdout=StringIO())
