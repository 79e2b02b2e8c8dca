/* Cart Recovery inside the Saleor Dashboard.
 *
 * The Dashboard loads this page in an iframe and posts it an AppBridge "handshake" with a JWT
 * (later "tokenRefresh"). The token stays in this variable: it is sent only as a Bearer header to
 * our own endpoint, never put in a URL, a cookie or storage. Every page is rendered on the server;
 * this script only fetches fragments and swaps them in.
 */
(function () {
  "use strict";
  var app = document.getElementById("app");
  var main = document.getElementById("main");
  var status = document.getElementById("status");
  var progress = document.getElementById("progress");
  var base = app.getAttribute("data-base");
  var origins = JSON.parse(app.getAttribute("data-origins") || "[]");
  var search = new URLSearchParams(window.location.search);
  var locale = search.get("locale") || navigator.language || "en";
  var token = null;
  var parentOrigin = null;
  var current = { page: app.getAttribute("data-first-page"), query: new URLSearchParams() };
  if (app.getAttribute("data-channel")) current.query.set("channel", app.getAttribute("data-channel"));
  if (search.get("customerId")) current.query.set("customer", search.get("customerId"));

  function say(text) { status.textContent = text; }

  function busy(on) {
    progress.hidden = !on;
    main.setAttribute("aria-busy", on ? "true" : "false");
  }

  function request(method, page, params, target) {
    if (!token) { say("Waiting for the Saleor Dashboard…"); return Promise.resolve(); }
    var url = base + page;
    var init = {
      method: method,
      headers: { "Authorization": "Bearer " + token, "X-Dashboard-Locale": locale },
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer"
    };
    if (method === "GET") {
      var query = params.toString();
      if (query) url += "?" + query;
    } else {
      init.headers["Content-Type"] = "application/x-www-form-urlencoded";
      init.body = params.toString();
    }
    busy(true);
    say("Loading…");
    return fetch(url, init).then(function (response) {
      return response.text().then(function (html) {
        var region = target ? document.querySelector(target) : main;
        region.innerHTML = html;
        if (!target) {
          // after a navigation, focus goes to the new page's heading (not on the first load)
          if (current.loaded) (main.querySelector("#page-title") || main).focus();
          current = { page: page, query: params, loaded: true };
        }
        say(response.ok ? "" : "The page answered " + response.status + ".");
      });
    }).catch(function () {
      say("The page could not be loaded: check the connection and try again.");
    }).then(function () { busy(false); });
  }

  function reply(message) {
    if (parentOrigin && window.parent !== window) window.parent.postMessage(message, parentOrigin);
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
      parentOrigin = event.origin;
      if (data.type === "handshake") {
        reply({ type: "notifyReady", payload: { actionId: "cart-recovery-ready" } });
      }
      if (first) request("GET", current.page, current.query);
    } else if (data.type === "localeChanged" && payload.locale) {
      locale = payload.locale;
      request("GET", current.page, current.query);
    } else if (data.type === "theme" && payload.theme) {
      document.documentElement.setAttribute("data-theme", payload.theme);
    }
  });

  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-page]");
    if (!link) return;
    event.preventDefault();
    request("GET", link.getAttribute("data-page"), new URLSearchParams(link.getAttribute("data-query") || ""));
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-page")) return;
    event.preventDefault();
    var submitter = event.submitter;
    var method = ((submitter && submitter.getAttribute("formmethod")) || form.getAttribute("method") || "get").toUpperCase();
    var page = (submitter && submitter.getAttribute("data-page")) || form.getAttribute("data-page");
    var params = new URLSearchParams(new FormData(form));
    if (method === "POST") params.delete("preview");
    request(method, page, params, form.getAttribute("data-target"));
  });

  document.addEventListener("change", function (event) {
    if (event.target.id === "channel-select") event.target.form.requestSubmit();
  });

  if (search.get("theme")) document.documentElement.setAttribute("data-theme", search.get("theme"));
  window.setTimeout(function () {
    if (!token) say("Open Cart Recovery from the Saleor Dashboard (Customers → Cart recovery): this page needs its sign-in.");
  }, 4000);
})();
