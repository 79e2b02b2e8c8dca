"""Cart Recovery inside the Saleor Dashboard, against real Saleor 3.23: the command that installs the
App and its extensions, the tokens Saleor itself creates for them (through its GraphQL API and its
JWT functions), and every way a token can be wrong."""

from datetime import timedelta
from html import unescape
from io import StringIO

import graphene
import pytest
from django.core.management import call_command
from django.utils import timezone
from freezegun import freeze_time
from saleor.app.models import App, AppExtension
from saleor.core.jwt import (
    create_access_token,
    create_access_token_for_app,
    create_access_token_for_app_extension,
)
from saleor.graphql.tests.utils import get_graphql_content

from saleor_cart_recovery.saleor_host.dashboard import APP_IDENTIFIER

from .utils import T0, create_checkout, gid

PAGES = "/plugins/saleor_cart_recovery/dashboard/"
APP_EXTENSIONS = """
query { appExtensions(first: 10) { edges { node { label url mountName targetName accessToken } } } }
"""


APP_TOKEN = "query ($id: ID!) { app(id: $id) { appUrl accessToken } }"


def install(*args) -> str:
    out = StringIO()
    call_command("cart_recovery_dashboard", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def dashboard_app(cart_recovery):
    install("--url", "https://api.shop.example.com")
    return App.objects.get(identifier=APP_IDENTIFIER)


@pytest.fixture
def checkout_staff(staff_user, permission_manage_checkouts):
    staff_user.user_permissions.add(permission_manage_checkouts)
    return staff_user


def page(client, name, token, **params):
    return client.post(PAGES + name, params, HTTP_AUTHORIZATION=f"Bearer {token}")


def test_the_command_installs_one_app_with_a_page_and_a_customer_action_and_can_take_it_out(cart_recovery):
    first = install(
        "--url", "https://api.shop.example.com/graphql/", "--dashboard-origin", "https://dash.example.com"
    )
    second = install(
        "--url", "https://api.shop.example.com", "--dashboard-origin", "https://dash.example.com"
    )
    assert first.startswith("created") and second.startswith("updated")
    app = App.objects.get(identifier=APP_IDENTIFIER)
    assert App.objects.filter(identifier=APP_IDENTIFIER).count() == 1
    assert app.name == "Cart Recovery" and app.is_active and app.is_installed
    assert app.type == "thirdparty"  # Saleor gives the Dashboard an App.accessToken only for these
    assert app.app_url == "https://api.shop.example.com/plugins/saleor_cart_recovery/dashboard"
    assert [p.codename for p in app.permissions.all()] == ["manage_checkouts"]
    extensions = {
        (e.mount, e.target, e.url, tuple(p.codename for p in e.permissions.all()))
        for e in AppExtension.objects.filter(app=app)
    }
    assert extensions == {
        ("navigation_customers", "app_page", "/", ("manage_checkouts",)),
        (
            "customer_details_more_actions",
            "popup",
            "https://api.shop.example.com/plugins/saleor_cart_recovery/dashboard/customer",
            ("manage_checkouts",),
        ),
    }
    assert install("--remove") == "removed the Cart Recovery app\n"
    assert not App.objects.filter(identifier=APP_IDENTIFIER).exists()
    assert install("--remove") == "no Cart Recovery app to remove\n"


def test_the_command_rejects_an_origin_that_is_not_a_url(cart_recovery):
    with pytest.raises(Exception, match="is not an http"):
        install("--dashboard-origin", "dashboard.example.com")
    assert not App.objects.filter(identifier=APP_IDENTIFIER).exists()


def test_the_shell_may_be_framed_only_by_the_given_dashboard(client, cart_recovery):
    install("--dashboard-origin", "https://dash.example.com")
    response = client.get(PAGES)
    assert response.status_code == 200
    assert response["Content-Security-Policy"].endswith("frame-ancestors https://dash.example.com")


def test_the_tokens_the_dashboard_gets_from_saleor_open_the_pages(
    client,
    staff_api_client,
    dashboard_app,
    checkout_staff,
    customer_user,
    api_client,
    channel_USD,
    stocked_variant,
):
    with freeze_time(T0):
        create_checkout(api_client, channel_USD, stocked_variant, email="shopper@example.com")
    staff_api_client.user = checkout_staff
    # the Dashboard reads the extensions' tokens exactly like this
    edges = get_graphql_content(staff_api_client.post_graphql(APP_EXTENSIONS))["data"]["appExtensions"][
        "edges"
    ]
    ours = {edge["node"]["mountName"]: edge["node"] for edge in edges}
    popup = ours["CUSTOMER_DETAILS_MORE_ACTIONS"]
    assert popup["targetName"] == "POPUP" and popup["accessToken"]
    response = page(client, "carts", popup["accessToken"], customer=gid(customer_user))
    assert response.status_code == 200
    assert f"Carts of the customer {customer_user.email}" in response.content.decode()
    # a staff member is no customer: their address is not shown to whoever manages checkouts
    staff = page(client, "carts", popup["accessToken"], customer=gid(checkout_staff)).content.decode()
    assert "No customer account with this ID" in staff and checkout_staff.email not in staff
    # the app page gets the App's token, read by the Dashboard as `app(id) { accessToken }`
    app_query = {"id": graphene.Node.to_global_id("App", dashboard_app.pk)}
    app_data = get_graphql_content(staff_api_client.post_graphql(APP_TOKEN, app_query))["data"]["app"]
    assert app_data["appUrl"] == "https://api.shop.example.com/plugins/saleor_cart_recovery/dashboard"
    overview = page(client, "carts", app_data["accessToken"], q="shopper@example.com")
    assert overview.status_code == 200 and "shopper@example.com" in overview.content.decode()
    assert '<option value="main" selected>' in overview.content.decode()


def _forged(token: str) -> str:
    head, body, signature = token.split(".")
    return ".".join([head, body, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")])


@pytest.mark.parametrize(
    ("make", "status", "text"),
    [
        (lambda app, staff, other: "", 401, "Open Cart Recovery from the Saleor Dashboard."),
        (lambda app, staff, other: "garbage", 401, "needs a token from the Saleor Dashboard"),
        (lambda app, staff, other: _forged(create_access_token_for_app(app, staff)), 401, "needs a token"),
        (
            lambda app, staff, other: create_access_token(staff),
            401,
            "the Dashboard's token for the Cart Recovery",
        ),
        (lambda app, staff, other: create_access_token_for_app(other, staff), 403, "issued for another app"),
        (
            lambda app, staff, other: create_access_token_for_app_extension(
                other.extensions.first(), app.permissions.all(), staff, app
            ),
            403,
            "another app's extension",
        ),
    ],
    ids=[
        "no_token_case",
        "not_a_jwt_case",
        "forged_signature_case",
        "staff_token_not_an_app_token_case",
        "foreign_app_case",
        "foreign_extension_case",
    ],
)
def test_a_wrong_token_is_refused(
    client, dashboard_app, checkout_staff, app_with_extensions, make, status, text, caplog
):
    caplog.set_level("DEBUG")
    other, _ = app_with_extensions
    other.permissions.add(*dashboard_app.permissions.all())
    token = make(dashboard_app, checkout_staff, other)
    response = client.post(PAGES + "overview", HTTP_AUTHORIZATION=f"Bearer {token}" if token else "")
    assert response.status_code == status
    assert text in unescape(response.content.decode())
    assert "<nav" not in response.content.decode()
    if token:
        assert token not in caplog.text  # a refused token is never logged


def test_an_expired_token_is_refused(client, dashboard_app, checkout_staff, settings):
    token = create_access_token_for_app(dashboard_app, checkout_staff)
    with freeze_time(timezone.now() + settings.JWT_TTL_APP_ACCESS + timedelta(seconds=5)):
        response = page(client, "overview", token)
    assert response.status_code == 401 and "expired" in response.content.decode()


def test_staff_without_manage_checkouts_get_a_token_without_it_and_are_refused(
    client, dashboard_app, staff_user
):
    token = create_access_token_for_app(dashboard_app, staff_user)
    response = page(client, "overview", token)
    assert response.status_code == 403 and "MANAGE_CHECKOUTS" in response.content.decode()


def test_a_token_of_a_user_who_lost_the_permission_or_was_deactivated_is_refused(
    client, dashboard_app, checkout_staff, permission_manage_checkouts
):
    token = create_access_token_for_app(dashboard_app, checkout_staff)
    assert page(client, "overview", token).status_code == 200
    checkout_staff.user_permissions.remove(permission_manage_checkouts)
    assert page(client, "overview", token).status_code == 403
    checkout_staff.user_permissions.add(permission_manage_checkouts)
    checkout_staff.is_active = False
    checkout_staff.save()
    assert page(client, "overview", token).status_code == 401


def test_a_switched_off_app_no_longer_opens_the_pages(client, dashboard_app, checkout_staff):
    token = create_access_token_for_app(dashboard_app, checkout_staff)
    dashboard_app.is_active = False
    dashboard_app.save()
    assert page(client, "overview", token).status_code == 403


def test_staff_restricted_to_another_channel_see_only_that_channel(
    client, dashboard_app, staff_user, permission_group_all_perms_channel_USD_only, channel_PLN
):
    group = permission_group_all_perms_channel_USD_only
    group.channels.set([channel_PLN])
    group.user_set.add(staff_user)
    token = create_access_token_for_app(dashboard_app, staff_user)
    refused = page(client, "overview", token, channel="main")
    assert refused.status_code == 403 and "no access to the channel 'main'" in unescape(
        refused.content.decode()
    )
    allowed = page(client, "overview", token).content.decode()
    assert f'<option value="{channel_PLN.slug}" selected>' in allowed and 'value="main"' not in allowed
