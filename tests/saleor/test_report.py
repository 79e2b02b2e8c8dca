"""Experiments end to end in real Saleor: treated and holdout carts, a tracked click, real orders,
then the report (command and staff-only page) shows exactly what happened."""

import json
import re
from decimal import Decimal
from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.management import call_command
from freezegun import freeze_time
from saleor.account.models import Group
from saleor.channel.models import Channel
from saleor.checkout.models import Checkout
from saleor.core.jwt import create_access_token

from saleor_cart_recovery.formatting import Formatter
from saleor_cart_recovery.models import RecoveryCart, RecoveryMessage

from .utils import HOUR, T0, create_checkout, dispatch_at

REPORT = "/plugins/channel/main/saleor_cart_recovery/report"
SUBJECTS = (
    "1: Forgot something?\n1: Still thinking it over?\n2: Your cart is waiting\n3: Last call for your cart"
)


def carts_in_groups(api_client, channel, variant, *, treated: int, holdout: int) -> dict[str, list[str]]:
    """Create checkouts through the API until the holdout hash filled both groups exactly."""
    groups: dict[str, list[str]] = {"treated": [], "holdout": []}
    wanted = {"treated": treated, "holdout": holdout}
    for n in range(60):
        with freeze_time(T0):
            token = create_checkout(api_client, channel, variant, quantity=1, email=f"shopper{n}@example.com")
        group = "holdout" if RecoveryCart.objects.get(checkout_token=token).holdout else "treated"
        if len(groups[group]) < wanted[group]:
            groups[group].append(token)
        else:  # this group is full: the extra cart takes no part
            RecoveryCart.objects.filter(checkout_token=token).delete()
            Checkout.objects.filter(token=token).delete()
        if all(len(groups[g]) == wanted[g] for g in wanted):
            return groups
    raise AssertionError("the holdout hash never filled both groups")


@pytest.fixture
def experiment_mix(
    api_client, client, enable_cart_recovery, channel_USD, stocked_variant, run_dispatch, complete_checkout
):
    """3 treated + 2 holdout carts left at T0; step 1 at T0+1h; T1 clicks and buys, T2 buys
    without clicking, H1 buys without any email; T3 and H2 buy nothing."""
    enable_cart_recovery(holdout_percent="50", subjects=SUBJECTS, winner_min_recipients="10")
    groups = carts_in_groups(api_client, channel_USD, stocked_variant, treated=3, holdout=2)
    t1, t2, _ = groups["treated"]
    h1, _ = groups["holdout"]
    dispatch_at(run_dispatch, T0 + HOUR)
    assert len(mail.outbox) == 3  # the holdout gets nothing
    [email] = [m for m in mail.outbox if m.to == [Checkout.objects.get(token=t1).email]]
    [link] = re.findall(r"https?://\S+/click/\S+", email.body)
    with freeze_time(T0 + 2 * HOUR):  # a person's click: the page, then the beacon it sends
        page = client.get(urlsplit(link).path)
        assert f'href="https://shop.example.com/cart/{t1}"' in page.content.decode()
        assert client.post(urlsplit(link).path).status_code == 204
    with freeze_time(T0 + 3 * HOUR):
        orders = {"T1": complete_checkout(t1), "H1": complete_checkout(h1)}
    with freeze_time(T0 + 5 * HOUR):
        orders["T2"] = complete_checkout(t2)
    totals = {name: order.total_gross_amount for name, order in orders.items()}
    return groups, totals


def test_report_shows_exactly_what_happened(experiment_mix):
    groups, totals = experiment_mix
    # each order is 1 × Test product (10.00) plus the checkout's delivery price
    assert len(set(totals.values())) == 1 and totals["T1"] > Decimal("10.00")
    out = StringIO()
    call_command("cart_recovery_report", "--json", "--channel", "main", stdout=out)
    [report] = json.loads(out.getvalue())
    money = lambda amount: str(amount.quantize(Decimal("0.01")))  # noqa: E731
    assert report["current"] is True and report["currency"] == "USD"
    treated_revenue = money(totals["T1"] + totals["T2"])
    assert report["treated"] == {
        "carts": 3,
        "shoppers": 3,
        "orders": 2,
        "converted": 2,
        "conversion_rate_pct": 66.67,
        "shoppers_converted": 2,
        "shopper_rate_pct": 66.67,
        "complete": {"shoppers": 3, "converted": 2},
        "revenue": {"gross": treated_revenue, "refunded": "0.00", "net": treated_revenue},
        "recipients": 3,
        "bounced": 0,
    }
    assert report["holdout"] == {
        "carts": 2,
        "shoppers": 2,
        "orders": 1,
        "converted": 1,
        "conversion_rate_pct": 50.0,
        "shoppers_converted": 1,
        "shopper_rate_pct": 50.0,
        "complete": {"shoppers": 2, "converted": 1},
        "revenue": {"gross": money(totals["H1"]), "refunded": "0.00", "net": money(totals["H1"])},
    }
    assert report["lift_verdict"] == "inconclusive"
    assert report["lift_pct"] == 16.67
    # incremental revenue: treated revenue - holdout revenue per cart × 3 treated carts
    assert report["incremental_revenue"] == money(totals["T1"] + totals["T2"] - totals["H1"] * 3 / 2)
    assert report["recovered_after_reminder"] == {"orders": 2, "revenue": money(totals["T1"] + totals["T2"])}
    assert report["recovered_after_click"] == {"orders": 1, "revenue": money(totals["T1"])}
    [step] = report["steps"]
    assert (
        step["total"]["carts"],
        step["total"]["sent"],
        step["total"]["clicked"],
        step["total"]["converted"],
    ) == (
        3,
        3,
        1,
        2,
    )
    # the variant each treated cart got is recorded on its message
    variants = dict(
        RecoveryMessage.objects.filter(cart__holdout=False).values_list("cart__checkout_token", "variant")
    )
    assert sorted(variants) == sorted(groups["treated"])
    assert sum(v["sent"] for v in step["arms"]) == 3
    assert all(v["p_value"] is None and not v["winner"] for v in step["arms"])  # 3 carts < 10


def staff_headers(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {create_access_token(user)}"}


def test_report_page_for_staff_with_manage_checkouts(
    experiment_mix, client, staff_user, permission_manage_checkouts
):
    _, totals = experiment_mix
    staff_user.user_permissions.add(permission_manage_checkouts)
    response = client.get(REPORT, **staff_headers(staff_user))
    assert response.status_code == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))
    revenue = Formatter("en").money(totals["T1"] + totals["T2"], "USD")
    assert f"Treated 3 3 2 2 66.67% 66.67% {revenue} $0.00 {revenue}" in text
    assert "Lift per cart: 16.67 percentage points" in text
    assert "1 orders recovered after a click" in text


def test_report_page_for_an_app_with_manage_plugins(experiment_mix, client, app, permission_manage_plugins):
    app.permissions.add(permission_manage_plugins)
    _, token = app.tokens.create(name="report")
    response = client.get(REPORT, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200 and "Holdout vs treated" in response.content.decode()


@pytest.mark.parametrize(
    "who",
    ["anonymous", "garbage", "staff_without_permission", "app_without_permission", "customer"],
)
def test_report_page_refuses_everyone_else(cart_recovery, client, staff_user, app, customer_user, who):
    _, app_token = app.tokens.create(name="report")
    headers = {
        "anonymous": {},
        "garbage": {"HTTP_AUTHORIZATION": "Bearer not-a-token"},
        "staff_without_permission": staff_headers(staff_user),
        "app_without_permission": {"HTTP_AUTHORIZATION": f"Bearer {app_token}"},
        "customer": staff_headers(customer_user),
    }[who]
    response = client.get(REPORT, **headers)
    expected = 401 if who in ("anonymous", "garbage") else 403
    assert response.status_code == expected
    assert "Holdout" not in response.content.decode()


@pytest.mark.parametrize(
    ("group_channel", "expected"),
    [("main", 200), ("elsewhere", 403)],
    ids=["restricted_to_this_channel_case", "restricted_to_another_channel_case"],
)
def test_channel_restricted_staff_see_only_their_channels(
    cart_recovery, client, staff_user, permission_manage_checkouts, channel_USD, group_channel, expected
):
    # given a staff user whose only permission group grants MANAGE_CHECKOUTS for one channel
    if group_channel == "main":
        channel = channel_USD
    else:
        channel = Channel.objects.create(name="Elsewhere", slug="elsewhere", currency_code="EUR")
    group = Group.objects.create(name="Checkouts of one channel", restricted_access_to_channels=True)
    group.permissions.add(permission_manage_checkouts)
    group.channels.add(channel)
    staff_user.groups.add(group)
    # when they open the report of channel "main"
    response = client.get(REPORT, **staff_headers(staff_user))
    # then only staff of that channel get it
    assert response.status_code == expected
