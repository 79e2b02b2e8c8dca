"""The pages inside the Saleor Dashboard, through the plugin's endpoint with the test shop's tokens
(Saleor's own token check is tested in the Saleor suite): shell and assets without data, each
fragment only with a token, every page's content, the test send to a real SMTP server on
loopback, and the problems the settings page flags."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.utils import timezone

from saleor_cart_recovery.http.dashboard.views import VIEWS
from saleor_cart_recovery.models import (
    CartStatus,
    MessageStatus,
    Reason,
    RecoveryCart,
    RecoveryMessage,
    Suppression,
    WorkerHeartbeat,
)
from saleor_cart_recovery.series.beat import DISPATCH, periodic_task_model, register_schedule
from saleor_cart_recovery.series.health import record_heartbeat
from tests.shopapp.models import ShopChannel, ShopVoucher

from .conftest import CONFIGURATION, START, make_checkout, touch, with_smtp

BASE = "/plugins/saleor_cart_recovery/dashboard/"
TOKEN = "staff:owner@shop.example.com:MANAGE_CHECKOUTS:*"


def get(client, page, auth=TOKEN, locale="en-US", **params):
    """A page as the script asks for it: POST with the parameters in the body."""
    headers = {"HTTP_X_DASHBOARD_LOCALE": locale}
    if auth is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {auth}"
    return client.post(BASE + page, params, **headers)


def post(client, page, data, auth=TOKEN):
    return client.post(BASE + page, data, HTTP_AUTHORIZATION=f"Bearer {auth}")


def test_the_shell_holds_no_data_and_may_be_framed(client, channel):
    response = client.get(BASE)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-first-page="overview"' in html and f'src="{BASE}app.js"' in html
    csp = response["Content-Security-Policy"]
    assert "frame-ancestors *" in csp and "script-src 'self'" in csp and "'unsafe-eval'" not in csp
    assert response["Cache-Control"] == "no-store" and response["Referrer-Policy"] == "no-referrer"
    customer = client.get(BASE + "customer")
    assert 'data-first-page="carts"' in customer.content.decode()
    script = client.get(BASE + "app.js")
    assert script["Content-Type"].startswith("text/javascript") and b"handshake" in script.content


@pytest.mark.parametrize(
    ("query", "accept_language", "lang", "locale", "waiting"),
    [
        ({}, "tr-TR,tr;q=0.9,en;q=0.5", "tr", "tr-tr", "Saleor Dashboard bekleniyor…"),
        ({}, "fr-FR,fr;q=0.9,de-CH;q=0.7", "de", "de-ch", "Warten auf das Saleor-Dashboard …"),
        ({}, "pt-BR,pt;q=0.9", "en", "", "Waiting for the Saleor Dashboard…"),
        ({"locale": "de"}, "tr-TR", "de", "de", "Warten auf das Saleor-Dashboard …"),
    ],
    ids=["turkish_browser_case", "first_language_we_have_case", "none_we_have_case", "url_locale_case"],
)
def test_the_shell_speaks_the_browsers_language_until_the_dashboard_says_otherwise(
    client, channel, query, accept_language, lang, locale, waiting
):
    # Dashboard 3.23 puts no ?locale= into an extension's URL: the first render has only the browser's
    html = client.get(BASE, query, HTTP_ACCEPT_LANGUAGE=accept_language).content.decode()
    assert f'<html lang="{lang}">' in html and waiting in html
    # and the script asks for the first page in that locale (then follows localeChanged)
    assert f'data-locale="{locale}"' in html
    script = client.get(BASE + "app.js").content.decode()
    assert 'app.getAttribute("data-locale")' in script and 'data.type === "localeChanged"' in script


def test_the_shell_may_be_framed_only_by_the_dashboards_given(client, channel, settings):
    settings.CART_RECOVERY_TEST_DASHBOARD_ORIGINS = ["https://dashboard.shop.example.com"]
    response = client.get(BASE)
    assert response["Content-Security-Policy"].endswith("frame-ancestors https://dashboard.shop.example.com")
    assert "https://dashboard.shop.example.com" in response.content.decode()  # the script checks the origin


@pytest.mark.parametrize(
    ("token", "status"),
    [
        (None, 401),
        ("", 401),
        ("not-a-token", 401),
        ("staff:owner@shop.example.com:MANAGE_ORDERS:*", 403),
        ("staff:owner@shop.example.com:MANAGE_CHECKOUTS:other", 403),  # no access to channel main
    ],
    ids=["no_header_case", "empty_case", "forged_case", "no_permission_case", "other_channel_case"],
)
@pytest.mark.parametrize("page", ["overview", "carts", "cart", "test", "settings"])
def test_every_page_needs_a_dashboard_token_for_the_channel(client, channel, token, status, page, caplog):
    ShopChannel.objects.create(slug="other", configuration=CONFIGURATION)
    caplog.set_level("DEBUG")
    response = get(client, page, auth=token, channel="main")
    assert response.status_code == status
    assert "owner@" not in response.content.decode() and "<nav" not in response.content.decode()
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")
    if token:
        assert token not in caplog.text  # refused tokens are never logged


@pytest.mark.parametrize("page", sorted(VIEWS))
def test_pages_are_asked_for_with_post_only_and_unknown_pages_are_404(client, channel, page):
    response = client.get(BASE + page, {"q": "shopper@example.com"}, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert get(client, "nothing-here").status_code == 404
    assert client.post(BASE + "app.js").status_code == 405


def test_the_shell_finds_its_assets_under_the_url_the_dashboard_builds(client, channel):
    # url-join drops the slash before the query: …/dashboard?domain=…&id=…
    html = client.get(BASE.rstrip("/"), {"domain": "api.example.com", "id": "QXBwOjE="}).content.decode()
    assert f'src="{BASE}app.js"' in html and f'href="{BASE}app.css"' in html
    per_channel = "/plugins/channel/dashboard-eu/saleor_cart_recovery/dashboard"
    assert (
        'src="/plugins/channel/dashboard-eu/saleor_cart_recovery/dashboard/app.js"'
        in client.get(per_channel).content.decode()
    )


def test_the_overview_explains_what_to_do_first_in_an_empty_channel(client, channel):
    response = get(client, "overview")
    html = response.content.decode()
    assert response.status_code == 200
    assert "No abandoned carts tracked in Main yet" in html
    assert 'data-page="settings"' in html and 'data-page="test"' in html
    assert 'aria-current="page"' in html and '<option value="main" selected>' in html


def test_the_empty_overview_of_a_second_channel_links_to_that_channels_settings(client, channel):
    # given a shop with two channels (the viewer may see all), the second one without carts
    ShopChannel.objects.create(slug="eu-shop", configuration=CONFIGURATION)
    html = get(client, "overview", channel="eu-shop").content.decode()
    # then its first steps link to the Settings and Test send tabs of that channel, not the first one
    empty = re.search(r'<section class="empty".*?</section>', html, re.S).group(0)
    links = re.findall(r'data-page="(settings|test)" data-query="([^"]*)"', empty)
    assert len(links) == 3 and {query for _, query in links} == {"channel=eu-shop"}


def cart_with_step_1(channel, recovery_settings, email="shopper@example.com", **message) -> RecoveryCart:
    """A cart left at START whose step 1 was planned an hour later, as ``message`` says."""
    checkout = make_checkout(channel, email=email)
    touch(checkout, START, recovery_settings)
    cart = RecoveryCart.objects.get(checkout_token=checkout.token)
    planned = START + timedelta(hours=1)
    RecoveryMessage.objects.create(
        cart=cart, step=1, planned_at=planned, **{"updated_at": planned, **message}
    )
    return cart


@pytest.fixture
def tracked(channel, recovery_settings):
    """Two carts in main: one sent step 1 then converted (after a click), one held out."""
    cart = cart_with_step_1(
        channel,
        recovery_settings,
        email="buyer@example.com",
        status=MessageStatus.SENT,
        subject="Forgot something?",
        recipient="buyer@example.com",
        sent_at=START + timedelta(hours=1, minutes=1),
        updated_at=START + timedelta(hours=1, minutes=1),
        clicks=2,
        first_clicked_at=START + timedelta(hours=2),
    )
    now = timezone.now()
    RecoveryCart.objects.filter(pk=cart.pk).update(
        status=CartStatus.CONVERTED,
        stop_reason=Reason.PURCHASED,
        order_number="1042",
        order_total="1234.50",
        order_currency="USD",
        conversion_match="token",
        converted_at=now - timedelta(days=1),
        next_due_at=None,
    )
    held = make_checkout(channel, email="held@example.com")
    touch(held, START, recovery_settings)
    RecoveryCart.objects.filter(checkout_token=held.token).update(holdout=True)
    return cart.checkout_token


def test_the_overview_shows_revenue_funnel_and_revenue_over_time_in_the_staff_locale(client, tracked):
    html = get(client, "overview", locale="de-DE", fresh="1").content.decode()
    assert "Zurückgewonnener Umsatz" in html and "Trichter nach Schritt" in html  # in German words too
    assert 'data-stage="sent">1<' in html and 'data-stage="clicked">1<' in html
    assert "1.234,50" in html  # German grouping and decimals
    # coordinates and widths stay machine numbers: a German decimal comma would break the charts
    assert not re.search(r'(?:x|y|height|width)="[0-9]+,[0-9]', html)
    assert "<svg" in html and "treated" in html
    # a day's bar names money from each group, not a count of carts
    assert "aus Warenkörben mit Erinnerung" in html and "aus der Kontrollgruppe" in html


def test_carts_are_found_by_email_or_token_and_bad_input_is_explained(client, tracked):
    by_email = get(client, "carts", q="Buyer@Example.com").content.decode()
    assert "buyer@example.com" in by_email and "held@example.com" not in by_email
    by_token = get(client, "carts", q=tracked).content.decode()
    assert f"token={tracked}" in by_token
    typed = get(client, "carts", q=tracked.replace("-", "").upper()).content.decode()
    assert f"token={tracked}" in typed
    nothing = get(client, "carts", q="nobody@example.com").content.decode()
    assert 'id="no-carts"' in nothing
    bad = get(client, "carts", q="robert'); drop table")
    assert (
        bad.status_code == 200 and "Enter a whole email address or a checkout token." in bad.content.decode()
    )
    latest = get(client, "carts").content.decode()
    assert "buyer@example.com" in latest and "held@example.com" in latest


def test_the_customer_action_lists_that_customers_carts(client, tracked):
    html = get(client, "carts", customer="customer:buyer@example.com").content.decode()
    assert "Carts of the customer buyer@example.com" in html and "held@example.com" not in html
    unknown = get(client, "carts", customer="User:999").content.decode()
    assert "No customer account with this ID" in unknown


def test_a_carts_story_tells_each_decision_in_order(client, tracked, channel):
    Suppression.objects.create(
        channel_slug="main", email="buyer@example.com", source="link", created_at=timezone.now()
    )
    html = get(client, "cart", token=tracked).content.decode()
    titles = [
        "Cart first seen",
        "Step 1 planned",
        "Step 1 sent to buyer@example.com",
        "Step 1 clicked",
        "Order 1042 from this checkout",
        "Unsubscribed",
    ]
    positions = [html.index(title) for title in titles]
    assert positions == sorted(positions)
    assert "2 clicks on the email's links" in unescape(html) and "$1,234.50" in html


def test_a_skipped_step_says_why_in_words(client, channel, recovery_settings):
    cart = cart_with_step_1(
        channel, recovery_settings, status=MessageStatus.SKIPPED, reason=Reason.NO_CONSENT
    )
    html = get(client, "cart", token=cart.checkout_token).content.decode()
    assert "Step 1 not sent" in html and "no marketing consent" in html


@pytest.mark.parametrize("token", ["", "not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_an_unknown_cart_is_a_400_naming_the_token_inside_the_page(client, channel, token):
    response = get(client, "cart", token=token)
    html = response.content.decode()
    assert response.status_code == 400
    assert 'data-field="token"' in html and 'aria-label="Cart Recovery pages"' in html  # tabs still there
    assert "<strong>Please check</strong>" in html  # the parameter's internal name is not shown


@pytest.fixture
def mailing_channel(channel, smtp_server):
    controller, _ = smtp_server
    extra = [{"name": "coupon_step", "value": "3"}]
    channel.configuration = with_smtp(controller.port, [*CONFIGURATION, *extra])
    channel.save()
    return channel


def test_preview_shows_the_steps_email_in_a_sandboxed_frame(client, mailing_channel):
    html = get(client, "test", step="3", preview="1").content.decode()
    assert 'id="preview-subject">Last call<' in html
    assert "<iframe" in html and "sandbox" in html and "SAMPLE-CODE" in html
    # the email's markup is an escaped attribute value, never markup of this page
    srcdoc = html.split('srcdoc="', 1)[1].split('"', 1)[0]
    assert "<" not in srcdoc and "&lt;html" in srcdoc and "&quot;" in srcdoc


def test_a_test_send_reaches_the_mail_server_and_records_nothing(client, mailing_channel, inbox):
    response = post(client, "send", {"channel": "main", "step": "3", "email": "me@shop.example.com"})
    html = response.content.decode()
    assert response.status_code == 200 and "Sent “[Test] Last call” to me@shop.example.com." in html
    [received] = inbox.to("me@shop.example.com")
    assert received.message["Subject"] == "[Test] Last call" and "SAMPLE-CODE" in received.part("text/plain")
    assert RecoveryCart.objects.count() == 0 and RecoveryMessage.objects.count() == 0
    assert ShopVoucher.objects.count() == 0


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"step": "9", "email": "me@shop.example.com"}, "step"),
        ({"step": "x", "email": "me@shop.example.com"}, "step"),
        ({"step": "1", "email": "not an address"}, "email"),
        ({"step": "1", "email": "me@shop.example.com", "token": "nope"}, "token"),
    ],
    ids=["step_out_of_range_case", "step_not_a_number_case", "bad_email_case", "unknown_checkout_case"],
)
def test_a_bad_test_send_names_the_field_and_sends_nothing(client, mailing_channel, inbox, data, field):
    response = post(client, "send", {"channel": "main", **data})
    html = response.content.decode()
    assert response.status_code == 400 and f'data-field="{field}"' in html
    # the form is shown again as typed, the field marked
    assert f'id="{field}" name="{field}" aria-invalid="true"' in html
    assert 'value="me@shop.example.com"' in html or 'value="not an address"' in html
    assert inbox.received == []


def test_the_preview_shows_the_owners_and_shoppers_words_as_text_never_as_markup(client, mailing_channel):
    mailing_channel.configuration = [
        *mailing_channel.configuration,
        {"name": "email_copy", "value": "1 intro: Hello <img src=//evil.example/x> there"},
    ]
    mailing_channel.save()
    html = get(client, "test", step="1", preview="1").content.decode()
    text_part = html.split('<pre id="preview-text">', 1)[1].split("</pre>", 1)[0]
    assert "&lt;img src=//evil.example/x&gt;" in text_part and "<img" not in text_part
    assert "<img src=//evil.example" not in html


def test_a_test_send_to_an_unreachable_server_says_so(client, channel):
    channel.configuration = with_smtp(1)  # nothing listens on port 1
    channel.save()
    response = post(client, "send", {"channel": "main", "step": "1", "email": "me@shop.example.com"})
    assert (
        response.status_code == 200
        and "Not sent: could not reach the mail server" in response.content.decode()
    )


def test_settings_flag_the_problems_that_keep_reminders_from_going_out(client, db):
    ShopChannel.objects.create(
        slug="main",
        active=False,
        configuration=[item for item in CONFIGURATION if item["name"] != "storefront_url"],
    )
    periodic_task_model().objects.filter(name=DISPATCH.task).update(enabled=False)
    html = get(client, "settings").content.decode()
    assert "Cart Recovery is not active in this channel" in html
    assert 'data-field="storefront_url"' in html
    assert f"Beat has no enabled entry for {DISPATCH.task}" in html
    assert "No Celery worker ran the dispatcher in the last 3 minutes (last seen: never)" in html
    assert "Cart Recovery is switched off in Main" in html


def test_settings_with_beat_and_a_live_worker_show_no_problem_and_hide_the_smtp_secret(client, channel):
    channel.configuration = with_smtp(2525)
    channel.configuration[-1]["value"] = "smtp://user:hunter2pass@127.0.0.1:2525"
    channel.save()
    register_schedule()
    record_heartbeat(DISPATCH.task, timezone.now() - timedelta(minutes=1))
    html = get(client, "settings").content.decode()
    assert 'id="no-problems"' in html, html
    assert "hunter2pass" not in html and "set (hidden)" in html


def test_a_worker_silent_for_minutes_is_flagged(client, channel):
    register_schedule()
    WorkerHeartbeat.objects.create(task=DISPATCH.task, at=timezone.now() - timedelta(minutes=10))
    html = get(client, "settings").content.decode()
    assert "No Celery worker ran the dispatcher in the last 3 minutes" in html


def test_check_connection_reports_a_server_that_answers_and_one_that_does_not(client, mailing_channel, inbox):
    answered = post(client, "check-connection", {"channel": "main"}).content.decode()
    assert "answered and accepted the login" in answered and "<nav" not in answered
    assert inbox.received == []
    mailing_channel.configuration = with_smtp(1)
    mailing_channel.save()
    refused = post(client, "check-connection", {"channel": "main"}).content.decode()
    assert "could not reach the mail server" in refused


def test_a_failed_send_and_check_say_why_in_the_owners_language(client, channel):
    # given a channel whose mail server is down, and an owner whose Dashboard speaks Turkish / German
    channel.configuration = with_smtp(1)  # nothing listens on port 1
    channel.save()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    test = {"channel": "main", "step": "1", "email": "me@shop.example.com"}
    sent = client.post(BASE + "send", test, HTTP_X_DASHBOARD_LOCALE="tr-TR", **headers).content.decode()
    checked = client.post(
        BASE + "check-connection", {"channel": "main"}, HTTP_X_DASHBOARD_LOCALE="de-DE", **headers
    ).content.decode()
    # then the reason is a whole sentence in their language, the server's own words quoted after it
    assert "Gönderilmedi: e-posta sunucusuna ulaşılamadı:" in unescape(sent)
    assert "Der Mailserver 127.0.0.1:1 kann nicht verwendet werden: Der Mailserver ist nicht erreichbar:" in (
        unescape(checked)
    )
    settings_page = unescape(get(client, "settings", locale="de-DE").content.decode())
    assert "Erinnerungen werden über den Mailserver 127.0.0.1:1 verschickt." in settings_page


def test_a_page_that_fails_answers_503_and_logs(client, channel, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr("saleor_cart_recovery.http.dashboard.views.report_data", broken)
    response = get(client, "overview")
    assert response.status_code == 503 and "could not be built right now" in response.content.decode()
    assert "page overview of channel main failed" in caplog.text
