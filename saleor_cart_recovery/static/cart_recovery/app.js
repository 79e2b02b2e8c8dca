/* Cart Recovery inside the Saleor Dashboard.
 *
 * The Dashboard loads this page in an iframe and posts it an AppBridge "handshake" with a JWT
 * (later "tokenRefresh"). The token stays in this variable: it is sent only as a Bearer header to
 * our own endpoint, never put in a URL, a cookie or storage. Every page is rendered on the server
 * and asked for with POST, so its parameters (checkout tokens, addresses) never appear in a URL;
 * this script only fetches fragments and swaps them in.
 */
(function () {
  "use strict";
  var app = document.getElementById("app");
  var main = document.getElementById("main");
  var status = document.getElementById("status");
  var progress = document.getElementById("progress");
  var progressLabel = progress.querySelector(".visually-hidden");
  var base = app.getAttribute("data-base");
  var origins = JSON.parse(app.getAttribute("data-origins") || "[]");
  var search = new URLSearchParams(window.location.search);
  // the locale the shell was rendered in (?locale=, else the browser's Accept-Language) until the
  // Dashboard's localeChanged says otherwise
  var locale = search.get("locale") || app.getAttribute("data-locale") || navigator.language || "en";
  // what this script says itself, in the page's language: the shell's, then each page's (a page
  // rendered after a localeChanged brings the new language's)
  var strings = JSON.parse(app.getAttribute("data-strings") || "{}");
  var token = null;
  var refused = false; // the last answer was a 401: a refreshed token asks again
  var latest = 0; // only the newest request may fill the page
  var current = { page: app.getAttribute("data-first-page"), query: new URLSearchParams(), loaded: false };
  if (app.getAttribute("data-channel")) current.query.set("channel", app.getAttribute("data-channel"));
  if (search.get("customerId")) current.query.set("customer", search.get("customerId"));

  function say(text) { status.textContent = text; }

  function learn(container) {
    var page = container.querySelector("[data-strings]");
    if (page) strings = JSON.parse(page.getAttribute("data-strings"));
    var lang = container.querySelector("[data-language]");
    if (lang) document.documentElement.lang = lang.getAttribute("data-language");
    progressLabel.textContent = strings.loading;
  }

  function busy(on) {
    progress.hidden = !on;
    main.setAttribute("aria-busy", on ? "true" : "false");
  }

  // ``replay`` is what a reload (new locale, refreshed token) asks for again: the page itself, or
  // for an action (a test send) the page it came from — an action is never repeated
  function request(page, params, target, replay) {
    if (!token) { say(strings.waiting); return; }
    var number = ++latest;
    busy(true);
    say(strings.loading);
    fetch(base + page, {
      method: "POST",
      headers: {
        "Authorization": "Bearer " + token,
        "X-Dashboard-Locale": locale,
        "Content-Type": "application/x-www-form-urlencoded"
      },
      body: params.toString(),
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer"
    }).then(function (response) {
      return response.text().then(function (html) {
        if (number !== latest) return; // a newer page was asked for meanwhile
        refused = response.status === 401;
        var container = target ? document.querySelector(target) : main;
        container.innerHTML = html;
        learn(container);
        if (!target) {
          // after a navigation, focus goes to the new page's heading (not on the first load)
          if (current.loaded) (main.querySelector("#page-title") || main).focus();
          var again = replay || { page: page, query: params };
          var kept = new URLSearchParams(again.query);
          kept.delete("fresh"); // "compute now" once, not on every later reload
          current = { page: again.page, query: kept, loaded: true };
        }
        say(response.ok ? "" : strings.answered.replace("{status}", response.status));
      });
    }).catch(function () {
      if (number === latest) say(strings.unreachable);
    }).then(function () { if (number === latest) busy(false); });
  }

  window.addEventListener("message", function (event) {
    if (event.source !== window.parent || window.parent === window) return;
    if (origins.length && origins.indexOf(event.origin) === -1) return;
    var data = event.data || {};
    var payload = data.payload || {};
    if (data.type === "handshake" || data.type === "tokenRefresh") {
      if (typeof payload.token !== "string" || !payload.token) return;
      var first = token === null;
      token = payload.token;
      if (first) {
        // once, as the app-sdk does: the Dashboard answers every notifyReady with a new handshake
        window.parent.postMessage({ type: "notifyReady", payload: { actionId: "cart-recovery-ready" } }, event.origin);
      }
      if (first || refused) request(current.page, current.query);
    } else if (data.type === "localeChanged" && payload.locale && payload.locale !== locale) {
      // the Dashboard sends it right after the handshake: the newest request wins
      locale = payload.locale;
      if (token) request(current.page, current.query);
    } else if (data.type === "theme" && payload.theme) {
      document.documentElement.setAttribute("data-theme", payload.theme);
    }
  });

  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-page]");
    if (!link) return;
    event.preventDefault();
    request(link.getAttribute("data-page"), new URLSearchParams(link.getAttribute("data-query") || ""));
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-page")) return;
    event.preventDefault();
    var submitter = event.submitter;
    var page = (submitter && submitter.getAttribute("data-page")) || form.getAttribute("data-page");
    var params = new URLSearchParams(new FormData(form));
    var replay = null;
    if (submitter && submitter.hasAttribute("data-action")) {
      replay = { page: form.getAttribute("data-page"), query: new URLSearchParams(params) };
      var only = form.getAttribute("data-replay-only"); // what a reload may ask for again (no typed secret)
      if (only) {
        replay.query = new URLSearchParams();
        only.split(" ").forEach(function (name) { if (params.has(name)) replay.query.set(name, params.get(name)); });
      }
      params.delete("preview");
    }
    request(page, params, form.getAttribute("data-target"), replay);
  });

  if (search.get("theme")) document.documentElement.setAttribute("data-theme", search.get("theme"));
  window.setTimeout(function () {
    if (!token) say(strings.signIn);
  }, 4000);
})();
