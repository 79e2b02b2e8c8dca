"""The Dashboard pages in a real browser (headless Debian Chromium driven by Playwright) inside a
parent page that does what Saleor's Dashboard does: load the extension's URL in an iframe and post
it the AppBridge handshake with a token Saleor created for our app. Clicks through overview → a
cart's story → preview and test send → settings (a bad value refused on its field, then saved),
asserts on the DOM and on the mail a loopback SMTP server received, and saves screenshots
(``CART_RECOVERY_SCREENSHOTS``, default a temporary directory) to look at."""

import email
import os
import re
import shutil
import tempfile
import threading
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import graphene
import pytest
from babel.messages.pofile import read_po
from babel.numbers import format_currency
from django.core.management import call_command
from django.db import connections
from django.utils import timezone
from freezegun import freeze_time
from saleor.app.models import App
from saleor.channel.models import Channel
from saleor.core.jwt import create_access_token_for_app
from saleor.order.models import Order
from saleor.plugins.models import PluginConfiguration

import saleor_cart_recovery
from saleor_cart_recovery.saleor_host.dashboard import APP_IDENTIFIER
from saleor_cart_recovery.saleor_host.shop import PLUGIN_ID

from .utils import HOUR, create_checkout, dispatch_at, loopback_smtp

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="needs playwright (pip install playwright)"
)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"
    ),
    pytest.mark.django_db(transaction=True),
]
# What the Dashboard's AppFrame does (saleor-dashboard src/extensions/views/ViewManifestExtension/
# components/AppFrame/): on the iframe's load event post the handshake to the app's origin, and
# answer every notifyReady with another handshake (useNotifyReadyAction). The stand-in also notes
# what the page posts back.
PARENT = """<!DOCTYPE html><html><head><title>Saleor Dashboard</title><style>
body {{ margin: 0; font: 14px Helvetica, Arial, sans-serif; display: flex; background: #f4f5f7; }}
aside {{ width: 220px; padding: 16px; background: #fff; border-right: 1px solid #ddd; height: 100vh; }}
aside p {{ margin: 6px 0; color: #555; }} aside p.on {{ font-weight: bold; color: #000; }}
iframe {{ border: 0; width: 1000px; height: 1500px; background: #fff; }}
</style></head><body data-got="">
<aside><p><strong>Saleor</strong></p><p>Home</p><p>Catalog</p><p>Orders</p><p>Customers</p>
<p class="on">&nbsp;&nbsp;Cart recovery</p><p>Discounts</p><p>Extensions</p></aside>
<iframe id="app" title="Cart Recovery" src="{src}"
 sandbox="allow-same-origin allow-forms allow-scripts allow-downloads allow-popups"></iframe>
<script>
const frame = document.getElementById("app");
// the Dashboard tells the app its language right after the handshake (useAppDashboardUpdates)
const changeLocale = (locale) => frame.contentWindow.postMessage(
  {{type: "localeChanged", payload: {{locale}}}}, {origin});
frame.addEventListener("load", () => {{ handshake(); changeLocale({locale}); }});
const handshake = () => frame.contentWindow.postMessage(
  {{type: "handshake", payload: {{token: {token}, version: 1}}}}, {origin});
window.addEventListener("message", (event) => {{
  if (event.source !== frame.contentWindow) return;
  document.body.dataset.got += event.data.type + " ";
  if (event.data.type === "notifyReady") handshake();
}});
</script></body></html>"""


class Inbox:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    with loopback_smtp(inbox) as port:
        yield inbox, port


@pytest.fixture
def screenshots():
    folder = Path(
        os.environ.get("CART_RECOVERY_SCREENSHOTS") or tempfile.mkdtemp(prefix="cart-recovery-shots-")
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def shop_with_a_reminded_cart(
    live_server,
    enable_cart_recovery,
    channel_USD,
    stocked_variant,
    api_client,
    run_dispatch,
    complete_checkout,
    smtp,
    monkeypatch,
):
    """The plugin active in "main" with a loopback mail server; two carts left three hours ago whose
    first reminders went out an hour later, one of them bought since (so the overview has revenue
    to show), and the Dashboard app installed at the live server's URL. Returns the other's token."""
    inbox, port = smtp
    # the live server's thread opens its own connections: the replica alias must be the test database
    monkeypatch.setitem(connections.settings["replica"], "NAME", connections["default"].settings_dict["NAME"])
    enable_cart_recovery(smtp_url=f"smtp://127.0.0.1:{port}")
    left = timezone.now() - 3 * HOUR
    with freeze_time(left):
        token = create_checkout(api_client, channel_USD, stocked_variant, quantity=2)
        bought = create_checkout(
            api_client, channel_USD, stocked_variant, quantity=3, email="buyer@example.com"
        )
    dispatch_at(run_dispatch, left + 2 * HOUR)
    assert sorted(message["To"] for message in inbox.messages) == ["buyer@example.com", "shopper@example.com"]
    complete_checkout(bought)
    call_command("cart_recovery_dashboard", "--url", live_server.url, stdout=StringIO())
    return token


def _parent(live_server, token: str, path: str = "/", locale: str = "en-GB", **params: str) -> str:
    """The stand-in Dashboard framing the extension URL ``…/dashboard`` + ``path`` the way the
    Dashboard builds it (url-join drops the slash before the query it adds); ``locale`` is what its
    ``localeChanged`` announces after the handshake."""
    query = urlencode(
        {
            "domain": urlsplit(live_server.url).netloc,
            "saleorApiUrl": f"{live_server.url}/graphql/",
            "id": graphene.Node.to_global_id("App", App.objects.get(identifier=APP_IDENTIFIER).pk),
            "theme": "light",
            **params,
        }
    )
    src = f"{live_server.url}/plugins/saleor_cart_recovery/dashboard{path.rstrip('/')}?{query}"
    return PARENT.format(src=src, token=repr(token), origin=repr(live_server.url), locale=repr(locale))


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs its event loop in this thread: Django's ORM must not refuse it
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def dashboard_server():
    """The stand-in Dashboard on its own loopback origin (127.0.0.1, another port): a real
    cross-origin parent, as the Dashboard is to Saleor's API (Chromium refuses to frame a local page
    in one it cannot place on the local network, so a routed fake host would not do)."""
    pages: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", pages
    finally:
        server.shutdown()


def open_dashboard(browser, dashboard_server, html: str):
    origin, pages = dashboard_server
    pages["/"] = html.encode()
    page = browser.new_page(viewport={"width": 1240, "height": 1500}, locale="en-US")
    # what the browser complained about (CSP refusals, script errors) shows in a failing test's output
    page.on("console", lambda message: print(f"browser console: {message.type}: {message.text}"))
    page.on("pageerror", lambda error: print(f"browser page error: {error}"))
    page.goto(origin + "/")
    return page, page.frame_locator("#app")


def test_overview_cart_story_test_send_and_settings_in_a_real_browser(
    live_server,
    shop_with_a_reminded_cart,
    staff_user,
    permission_manage_checkouts,
    permission_manage_plugins,
    smtp,
    browser,
    dashboard_server,
    screenshots,
):
    inbox, port = smtp
    staff_user.user_permissions.add(permission_manage_checkouts, permission_manage_plugins)
    token = create_access_token_for_app(App.objects.get(identifier=APP_IDENTIFIER), staff_user)
    expect = playwright_api.expect

    page, app = open_dashboard(browser, dashboard_server, _parent(live_server, token))
    # the handshake was taken and answered the way the Dashboard expects
    page.wait_for_function("document.body.dataset.got.includes('notifyReady')")
    page.wait_for_timeout(500)  # the stand-in answered it with a second handshake
    assert page.evaluate("document.body.dataset.got") == "notifyReady "  # once: no ping-pong
    expect(app.locator("#page-title")).to_have_text("Cart Recovery")
    expect(app.get_by_role("navigation", name="Cart Recovery pages")).to_be_visible()
    expect(app.locator("#funnel-title")).to_be_visible()
    expect(app.locator("[data-stage='sent']").first).to_have_text("2")
    expect(app.locator("[data-stage='recovered']").first).to_have_text("1")
    # the order's real total (its lines and delivery), in the locale the Dashboard announced (British
    # English: English words, "US$" for the dollar)
    total = format_currency(Order.objects.get().total_gross_amount, "USD", locale="en_GB")
    expect(app.locator("#net-recovered")).to_have_text(total)
    expect(app.locator("#channel-select")).to_have_value("main")
    page.screenshot(path=screenshots / "dashboard-overview.png")

    # keyboard only: the Carts tab, a search, the cart's story
    app.get_by_role("link", name="Carts").focus()
    page.keyboard.press("Enter")
    search = app.get_by_label("Email or checkout token")
    search.fill("shopper@example.com")
    search.press("Enter")
    expect(app.locator("#cart-list")).to_contain_text("shopper@example.com")
    app.get_by_role("link", name="Story of the cart of shopper@example.com").click()
    timeline = app.locator("#timeline")
    expect(timeline).to_contain_text("Cart first seen")
    expect(timeline).to_contain_text("Step 1 sent to shopper@example.com")
    expect(timeline).to_contain_text("Forgot something?")
    expect(app.locator("#page-title")).to_be_focused()  # focus moves to the new page's heading
    page.screenshot(path=screenshots / "dashboard-cart.png")

    # preview of this cart's next step, then a test send to the owner
    app.get_by_role("link", name="Preview its next reminder (step 2)").click()
    expect(app.locator("#preview-subject")).to_have_text("Your cart is waiting")  # step 2 is next
    expect(app.locator("#step")).to_have_value("2")
    app.locator("#email").fill("owner@shop.example.com")
    app.locator("#preview-button").click()
    expect(app.locator("#preview-subject")).to_have_text("Your cart is waiting")
    # the email itself, in its sandboxed frame: the cart's lines and the shop's button
    email_frame = app.frame_locator("iframe.email-frame")
    expect(email_frame.locator("body")).to_contain_text("Test product")
    app.locator("#send-button").click()
    expect(app.locator("#send-result")).to_have_text(
        "Sent “[Test] Your cart is waiting” to owner@shop.example.com."
    )
    expect(email_frame.locator("body")).to_contain_text("Test product")  # the email that was sent
    # a language change reloads the page the test was sent from, never the send itself
    page.evaluate("changeLocale('en-US')")
    expect(app.locator("#send-result")).to_have_count(0)
    expect(app.locator("#preview-subject")).to_have_text("Your cart is waiting")
    page.screenshot(path=screenshots / "dashboard-test-send.png")

    app.get_by_role("link", name="Settings").click()
    expect(app.locator("#problems-title")).to_be_visible()
    app.locator("#check-connection").click()
    expect(app.locator("#connection-answer")).to_contain_text("answered and accepted the login")
    page.screenshot(path=screenshots / "dashboard-settings.png")

    # the settings form: a bad value comes back next to its field, as typed, and nothing is stored
    before = stored_configuration()
    expect(app.locator("#setting-smtp_url")).to_have_value("")  # the secret is never shown
    app.locator("#setting-schedule").fill("2h, 1d, 4d")
    app.locator("#setting-cutoff").fill("soon")
    app.locator("#save-settings").click()
    error = app.locator("#error-cutoff")
    expect(error).to_contain_text("Abandonment cutoff: 'soon' is not a duration")
    expect(app.locator("#setting-cutoff")).to_have_attribute("aria-invalid", "true")
    expect(app.locator("#form-error")).to_have_text("1 setting is not valid: nothing was saved.")
    expect(app.locator("#setting-schedule")).to_have_value("2h, 1d, 4d")
    assert stored_configuration() == before
    error.scroll_into_view_if_needed()
    app.locator("[data-field='cutoff']").screenshot(path=screenshots / "dashboard-settings-error.png")
    page.screenshot(path=screenshots / "dashboard-settings-error-page.png")
    # corrected, it is saved; the secret left blank is kept
    app.locator("#setting-cutoff").fill("45m")
    app.locator("#save-settings").click()
    expect(app.locator("#saved")).to_have_text("Saved. Cart Recovery is active in Main Channel.")
    after = stored_configuration()
    assert after["cutoff"] == "45m" and after["schedule"] == "2h, 1d, 4d"
    assert after["smtp_url"] == f"smtp://127.0.0.1:{port}"
    page.close()

    tests = [message for message in inbox.messages if message["To"] == "owner@shop.example.com"]
    assert [message["Subject"] for message in tests] == ["[Test] Your cart is waiting"]
    assert "Test product" in tests[0].get_body(("plain",)).get_content()


def stored_configuration() -> dict:
    config = PluginConfiguration.objects.get(identifier=PLUGIN_ID, channel__slug="main")
    return {item["name"]: item["value"] for item in config.configuration}


def test_the_customer_action_opens_that_customers_carts(
    live_server,
    shop_with_a_reminded_cart,
    staff_user,
    permission_manage_checkouts,
    customer_user,
    browser,
    dashboard_server,
):
    staff_user.user_permissions.add(permission_manage_checkouts)
    token = create_access_token_for_app(App.objects.get(identifier=APP_IDENTIFIER), staff_user)
    customer_id = graphene.Node.to_global_id("User", customer_user.pk)
    html = _parent(live_server, token, path="/customer", customerId=customer_id)
    page, app = open_dashboard(browser, dashboard_server, html)
    playwright_api.expect(app.locator(".page")).to_contain_text(
        f"Carts of the customer {customer_user.email}"
    )
    page.close()


@pytest.mark.parametrize(
    ("token", "text"),
    [
        ("forged.token.value", "This page needs a token from the Saleor Dashboard."),
        ("", "Open Cart Recovery from"),
    ],
    ids=["forged_case", "no_handshake_case"],
)
def test_without_a_valid_handshake_the_page_shows_nothing_but_why(
    live_server, shop_with_a_reminded_cart, browser, dashboard_server, token, text
):
    page, app = open_dashboard(browser, dashboard_server, _parent(live_server, token))
    playwright_api.expect(app.locator("#app")).to_contain_text(text, timeout=10_000)
    playwright_api.expect(app.locator("nav")).to_have_count(0)
    page.close()


# -- The pages in Turkish --------------------------------------------------------------------------

# Every text a person reads in the page, and the labels a screen reader says: text nodes and the
# aria-label / title / a password field's placeholder; not what the owner or shopper typed (form
# values, setting names in <code>, the channel picker, the email's own frame and text).
VISIBLE_TEXT = """(root) => {
  const skip = "code, textarea, pre, iframe, script, style, noscript, select, input:not([type=password])";
  const texts = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (node.parentElement && !node.parentElement.closest(skip)) texts.push(node.textContent);
  }
  for (const element of root.querySelectorAll("[aria-label], [title], input[type=password]")) {
    if (element.closest("iframe, select")) continue;
    for (const name of ["aria-label", "title", "placeholder"]) {
      if (element.getAttribute(name)) texts.push(element.getAttribute(name));
    }
  }
  return texts.join("\\n");
}"""


def english_messages(language: str = "tr") -> list[tuple[str, re.Pattern]]:
    """Each English message of the catalog that ``language`` says differently, as a pattern over
    visible text (placeholders match anything, markup is gone). Left out: words that are also what
    the owner types as values (the step contents ``reminder``, ``help``…), messages of fewer than
    four letters of their own ("on", "off", "net") and a count's one noun ("%(n)s cart", also a word
    of the shop's own links and subjects; the sentence it fills is checked)."""
    path = Path(saleor_cart_recovery.__file__).parent / "locale" / language / "LC_MESSAGES" / "django.po"
    with open(path, "rb") as po:
        catalog = read_po(po)
    found = []
    for message in catalog:
        if not message.id or message.context == "step content":
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for english in ids:
            if english in strings:
                continue  # the same word in both languages
            text = re.sub(r"<[^>]+>", "", english).replace("%%", "%")
            parts = [" ".join(part.split()) for part in re.split(r"%\(\w+\)s|\{\w+\}", text)]
            if sum(ch.isalpha() for ch in "".join(parts)) < 4:
                continue
            if len(parts) > 1 and len(" ".join(parts).split()) == 1:
                continue  # a count's noun ("%(n)s cart"): checked inside the sentence it fills
            pattern = r"\s*.+?\s*".join(re.escape(part) for part in parts if part)
            if text[:1].isalnum():
                pattern = r"(?<!\w)" + pattern
            if text[-1:].isalnum():
                pattern += r"(?!\w)"
            found.append((english, re.compile(pattern)))
    return found


def english_left(app, messages, data: tuple[str, ...]) -> list[str]:
    """The English messages the page still shows, once the shop's own data (names, addresses,
    subjects, the Dashboard's menu path) is taken out of its text."""
    text = app.locator("body").evaluate(VISIBLE_TEXT)
    for value in data:
        text = text.replace(value, " ")
    text = " ".join(text.split())
    left = ((english, pattern.search(text)) for english, pattern in messages)
    return sorted({f"{english} ⟶ {found.group(0)}" for english, found in left if found})


def test_after_localechanged_to_turkish_no_english_label_is_left(
    live_server,
    shop_with_a_reminded_cart,
    staff_user,
    permission_manage_checkouts,
    permission_manage_plugins,
    browser,
    dashboard_server,
    screenshots,
):
    staff_user.user_permissions.add(permission_manage_checkouts, permission_manage_plugins)
    token = create_access_token_for_app(App.objects.get(identifier=APP_IDENTIFIER), staff_user)
    expect = playwright_api.expect
    messages = english_messages()
    channel = Channel.objects.get(slug="main").name
    subjects = PluginConfiguration.objects.get(identifier=PLUGIN_ID, channel__slug="main").configuration
    data = (
        channel,
        "Test product",
        "Extensions → Installed → Cart Recovery",  # Saleor's own menu and plugin name
        *(
            line.split(":", 1)[1].strip()
            for item in subjects
            if item["name"] == "subjects"
            for line in item["value"].splitlines()
        ),
    )

    page, app = open_dashboard(browser, dashboard_server, _parent(live_server, token, locale="en-US"))
    expect(app.locator("#page-title")).to_have_text("Cart Recovery")
    # when the owner switches the Dashboard to Turkish, the page follows at once
    page.evaluate("changeLocale('tr')")
    expect(app.locator("#page-title")).to_have_text("Sepet Kurtarma")
    expect(app.locator("html")).to_have_attribute("lang", "tr")
    expect(app.locator("#funnel-title")).to_have_text("Adım adım huni")
    assert english_left(app, messages, data) == []
    page.screenshot(path=screenshots / "dashboard-overview-tr.png")

    app.get_by_role("link", name="Sepetler").click()
    search = app.get_by_label("E-posta veya sepet token'ı")
    search.fill("shopper@example.com")
    search.press("Enter")
    expect(app.locator("#cart-list")).to_contain_text("shopper@example.com")
    expect(app.locator("#cart-list")).to_contain_text("planlanan 1 hatırlatmanın 1 tanesi")
    assert english_left(app, messages, data) == []

    app.get_by_role("link", name="shopper@example.com adresinin sepet geçmişi").click()
    timeline = app.locator("#timeline")
    expect(timeline).to_contain_text("Sepet ilk kez görüldü")
    expect(timeline).to_contain_text("1. adım shopper@example.com adresine gönderildi")
    assert english_left(app, messages, data) == []

    app.get_by_role("link", name="Sonraki hatırlatmasını önizle (2. adım)").click()
    expect(app.locator("#preview-title")).to_contain_text("Konu:")
    app.locator("#email").fill("owner@shop.example.com")
    app.locator("#send-button").click()
    expect(app.locator("#send-result")).to_contain_text("owner@shop.example.com adresine gönderildi.")
    assert english_left(app, messages, data) == []

    app.get_by_role("link", name="Ayarlar").click()
    expect(app.locator("#save-settings")).to_have_text("Ayarları kaydet")
    app.locator("#check-connection").click()
    expect(app.locator("#connection-answer")).to_contain_text("yanıt verdi ve oturum açmayı kabul etti")
    assert english_left(app, messages, data) == []
    page.screenshot(path=screenshots / "dashboard-settings-tr.png", full_page=True)
    # a bad value is refused in Turkish, its plural right
    app.locator("#setting-cutoff").fill("soon")
    app.locator("#save-settings").click()
    expect(app.locator("#form-error")).to_have_text("1 ayar geçerli değil: hiçbir şey kaydedilmedi.")
    expect(app.locator("#error-cutoff")).to_contain_text("Terk edilme eşiği: 'soon' bir süre değil")
    assert english_left(app, messages, data) == []
    page.close()


def test_the_english_check_finds_english_left():
    # the check itself: an English label in a Turkish page is found, the Turkish text is not
    messages = english_messages()
    patterns = dict(messages)
    text = "Ayarları kaydet · Save settings · 2 settings are not valid: nothing was saved."
    assert patterns["Save settings"].search(text).group(0) == "Save settings"
    assert patterns["%(count)s settings are not valid: nothing was saved."].search(text)
    assert not patterns["Save settings"].search("Ayarları kaydet")
