"""Tracked links count a click only when a person's browser runs the click page: GET shows the page
(what scanners and previewers see), the page's script POSTs the count and opens the destination."""

import base64
import hashlib
import threading
import time
from datetime import timedelta
from html import escape
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from freezegun import freeze_time

from saleor_cart_recovery.email.tokens import ClickClaim, click_token
from saleor_cart_recovery.models import RecoveryCart, RecoveryMessage
from tests.shopapp.models import ShopChannel

from .conftest import CONFIGURATION, START, make_checkout, touch
from .realparts import chromium, needs_chromium

BASE = "/plugins/channel/main/saleor_cart_recovery"


def configure(channel, **values) -> None:
    merged = {**{item["name"]: item["value"] for item in CONFIGURATION}, **values}
    channel.configuration = [{"name": name, "value": value} for name, value in merged.items()]
    channel.save()


def reminder_for(checkout) -> RecoveryMessage:
    return RecoveryMessage.objects.create(
        cart=RecoveryCart.objects.get(checkout_token=checkout.token),
        step=1,
        status="sent",
        recipient=checkout.email,
        planned_at=START,
        updated_at=START,
        sent_at=START,
    )


@pytest.fixture
def reminder(abandoned_cart):
    return reminder_for(abandoned_cart)


def link_to(message: RecoveryMessage, target: str = "cart") -> str:
    return f"{BASE}/click/{click_token(ClickClaim(message.id, target))}"


def clicks(message: RecoveryMessage) -> tuple[int, object]:
    message.refresh_from_db()
    return message.clicks, message.first_clicked_at


class ClickPage(HTMLParser):
    """What a browser would take from the click page: its link, refresh target and scripts."""

    def __init__(self, html: str):
        super().__init__()
        self.links: list[str] = []
        self.refresh: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "a" and attributes.get("id") == "go":
            self.links.append(attributes["href"])
        if tag == "meta" and attributes.get("http-equiv") == "refresh":
            self.refresh.append(attributes["content"])
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


# --- what scanners see: the page, nothing counted ----------------------------------------------


def test_get_shows_a_page_that_leads_to_the_cart_and_counts_nothing(client, reminder, abandoned_cart):
    # when a scanner (or a person) fetches the link, even with a URL of its own in the query
    response = client.get(f"{link_to(reminder)}?next=https://evil.example/")
    # then it gets a page, no redirect, and the page leads only to the channel's cart URL
    cart_url = f"https://shop.example.com/cart/{abandoned_cart.token}"
    page = ClickPage(response.content.decode())
    assert (response.status_code, "Location" in response) == (200, False)
    assert "Opening your cart…" in response.content.decode() and ">Continue</a>" in response.content.decode()
    assert page.links == [cart_url]
    assert page.refresh == [f"0;url={cart_url}"]
    assert '<noscript><meta http-equiv="refresh"' in response.content.decode()
    assert "evil.example" not in response.content.decode()
    assert len(page.scripts) == 1 and "sendBeacon(location.href)" in page.scripts[0]
    assert (response["Cache-Control"], response["Referrer-Policy"], response["X-Robots-Tag"]) == (
        "no-store",
        "no-referrer",
        "noindex",
    )
    assert clicks(reminder) == (0, None)


def test_the_target_is_escaped_in_the_page(client, reminder, abandoned_cart, channel):
    configure(channel, storefront_url="https://shop.example.com/cart?t={token}&from='mail'")
    RecoveryMessage.objects.filter(pk=reminder.pk).update(voucher_code="CR-ABC123")
    html = client.get(link_to(reminder)).content.decode()
    url = f"https://shop.example.com/cart?t={abandoned_cart.token}&from='mail'&coupon=CR-ABC123"
    assert f'href="{escape(url)}"' in html and f'url={escape(url)}"' in html
    assert "&from='mail'" not in html  # neither & nor ' raw in an attribute
    assert ClickPage(html).links == [url]


def test_the_csp_allows_exactly_the_script_in_the_page(client, reminder):
    response = client.get(link_to(reminder))
    [script] = ClickPage(response.content.decode()).scripts
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = dict(
        (directive.split(" ", 1) + [""])[:2]
        for directive in (part.strip() for part in response["Content-Security-Policy"].split(";"))
    )
    assert policy == {
        "default-src": "'none'",
        "script-src": f"'sha256-{digest}'",
        "connect-src": "'self'",
        "style-src": "'unsafe-inline'",
        "base-uri": "'none'",
        "form-action": "'none'",
    }


def test_every_click_page_has_the_same_script(client, reminder, channel, recovery_settings):
    # the hash in the CSP is computed once: the script must not vary by cart, language or target
    turkish = make_checkout(channel, email="ayse@example.com", language="tr")
    touch(turkish, START, recovery_settings)
    links = [link_to(reminder), link_to(reminder, "product:wool-socks"), link_to(reminder_for(turkish))]
    pages = [client.get(link) for link in links]
    assert {ClickPage(page.content.decode()).scripts[0] for page in pages} == {
        ClickPage(pages[0].content.decode()).scripts[0]
    }
    assert len({page["Content-Security-Policy"] for page in pages}) == 1


def test_the_page_speaks_the_carts_language(client, channel, recovery_settings):
    checkout = make_checkout(channel, email="ayse@example.com", language="tr-TR")
    touch(checkout, START, recovery_settings)
    html = client.get(link_to(reminder_for(checkout))).content.decode()
    assert "Sepetiniz açılıyor…" in html and ">Devam et</a>" in html


@pytest.mark.parametrize(
    ("storefront", "product_pages", "title", "expected"),
    [
        ("cart", "", "Opening your cart…", "https://shop.example.com/cart/{token}"),
        ("product", "", "Opening the product page…", "https://shop.example.com/cart/{token}"),
        (
            "product",
            "https://shop.example.com/p/{slug}",
            "Opening the product page…",
            "https://shop.example.com/p/wool-socks",
        ),
    ],
    ids=["cart_case", "product_without_product_pages_case", "product_case"],
)
def test_upsell_links_lead_to_the_product_page_when_there_is_one(
    client, reminder, abandoned_cart, channel, storefront, product_pages, title, expected
):
    if product_pages:
        configure(channel, upsell_product_url=product_pages)
    target = "cart" if storefront == "cart" else "product:wool-socks"
    html = client.get(link_to(reminder, target)).content.decode()
    assert title in html
    assert ClickPage(html).links == [expected.format(token=abandoned_cart.token)]


# --- what a person's browser sends: the beacon counts --------------------------------------------


def test_the_beacon_counts_the_click_and_the_first_time(client, reminder):
    with freeze_time(START + timedelta(hours=2)):
        first = client.post(link_to(reminder))
    assert (first.status_code, first["Cache-Control"], first.content) == (204, "no-store", b"")
    assert clicks(reminder) == (1, START + timedelta(hours=2))
    with freeze_time(START + timedelta(hours=3)):
        assert client.post(link_to(reminder)).status_code == 204
    assert clicks(reminder) == (2, START + timedelta(hours=2))


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Purpose": "prefetch"},
        {"Sec-Purpose": "prefetch;prerender"},
        {"Purpose": "prefetch"},
        {"Purpose": "Prerender"},
        {"X-Moz": "prefetch"},
        {"X-Purpose": "preview"},
    ],
    ids=lambda h: "_".join([*h.items()][0]).lower().replace(";", "_") + "_case",
)
def test_prefetches_and_previews_count_nothing(client, reminder, headers):
    assert client.post(link_to(reminder), headers=headers).status_code == 204
    assert client.get(link_to(reminder), headers=headers).status_code == 200
    assert clicks(reminder) == (0, None)


def test_head_is_not_served_and_counts_nothing(client, reminder):
    response = client.head(link_to(reminder))
    assert (response.status_code, response["Allow"]) == (405, "GET, POST")
    assert client.put(link_to(reminder)).status_code == 405
    assert clicks(reminder) == (0, None)


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize(
    "switch_off",
    [
        lambda channel: ShopChannel.objects.filter(pk=channel.pk).update(active=False),
        lambda channel: configure(channel, storefront_url=""),
    ],
    ids=["plugin_off_case", "no_storefront_case"],
)
def test_without_a_storefront_the_link_is_404_and_counts_nothing(
    client, reminder, channel, method, switch_off
):
    switch_off(channel)
    assert getattr(client, method)(link_to(reminder)).status_code == 404
    assert clicks(reminder) == (0, None)


# --- a real browser: a person's click arrives at the cart and is counted once ---------------------


def serve(server) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def shop_server(settings):
    """The plugin's endpoints over real HTTP (the Django app in a thread; each request commits and
    closes its own connection, so the test needs a ``transaction=True`` database to see it).
    pytest-django's ``live_server`` would do, but its static-files wrapper needs a STATIC_URL."""
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietRequestHandler)
    server.set_app(WSGIHandler())
    serve(server)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietRequestHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def storefront():
    """A storefront on loopback that records the requests it gets (path, headers)."""
    received: list[tuple[str, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            received.append((self.path, dict(self.headers)))
            body = b"<!DOCTYPE html><title>cart</title><h1>Your cart</h1>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serve(server)
    server.received = received  # type: ignore[attr-defined]
    yield server
    server.shutdown()
    server.server_close()


def wait_for(condition, seconds: float = 10.0) -> bool:
    """Poll ``condition`` (a browser and a live server run outside the test's control)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


@needs_chromium
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("javascript", "counted"),
    [(True, 1), (False, 0)],
    ids=["javascript_case", "no_javascript_case"],
)
def test_a_browser_arrives_at_the_cart_and_only_a_running_page_counts(
    shop_server, storefront, reminder, abandoned_cart, channel, javascript, counted
):
    # given the channel's storefront is a server that records who arrives
    host, port = storefront.server_address
    configure(channel, storefront_url=f"http://{host}:{port}/cart/{{token}}")
    # when a browser opens the tracked link from the email
    # let the page's beacon and navigation run before the DOM is dumped
    url = f"{shop_server}{link_to(reminder)}"
    result = chromium("--virtual-time-budget=5000", "--dump-dom", url, javascript=javascript, timeout=60)

    # then it arrives at the shopper's cart, telling the storefront nothing about the link
    def pages():
        return [(path, headers) for path, headers in storefront.received if path != "/favicon.ico"]

    def counted_now():
        return RecoveryMessage.objects.get(pk=reminder.pk).clicks > 0

    assert wait_for(pages), result.stderr[-2000:]
    [(path, headers)] = pages()
    assert path == f"/cart/{abandoned_cart.token}"
    assert "Referer" not in headers
    # and the click is counted once with JavaScript (the beacon), not at all without it
    assert wait_for(counted_now, seconds=10 if counted else 2) == bool(counted)
    message = RecoveryMessage.objects.get(pk=reminder.pk)
    assert (message.clicks, message.first_clicked_at is not None) == (counted, bool(counted))
