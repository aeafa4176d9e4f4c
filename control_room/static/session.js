// mobile-cctv control room: a live page that loses its session says so instead of going quiet.
// Every same-origin fetch of the page carries X-CCTV-Live: 1; the server then answers a request
// without a session with 401 JSON (never a login page). The first such answer shows a banner with a
// login link back to this page, and stops the page's background requests.
(function () {
  "use strict";
  var realFetch = window.fetch.bind(window);
  var ended = null;

  function sameOrigin(url) {
    try { return new URL(url, window.location.href).origin === window.location.origin; }
    catch (e) { return false; }
  }

  function showBanner(info) {
    if (document.getElementById("session-ended")) { return; }
    var bar = document.createElement("div");
    bar.id = "session-ended";
    bar.className = "session-ended";
    bar.setAttribute("role", "alert");
    var text = document.createElement("span");
    text.textContent = (info.message || "Your session has ended.") + " This page is no longer updating. ";
    var link = document.createElement("a");
    var next = window.location.pathname + window.location.search;
    link.href = (info.login || "/login") + "?next=" + encodeURIComponent(next);
    link.textContent = "Log in again";
    link.id = "session-login";
    bar.appendChild(text);
    bar.appendChild(link);
    document.body.insertBefore(bar, document.body.firstChild);
    document.title = "Logged out · " + document.title;
  }

  window.fetch = function (input, init) {
    var url = typeof input === "string" ? input : (input && input.url) || "";
    if (!sameOrigin(url)) { return realFetch(input, init); }
    if (ended) { return Promise.reject(new Error("session ended")); }
    init = Object.assign({}, init || {});
    var headers = new Headers(init.headers || (typeof input !== "string" && input.headers) || {});
    headers.set("X-CCTV-Live", "1");
    init.headers = headers;
    return realFetch(input, init).then(function (r) {
      var loginPage = r.redirected && new URL(r.url).pathname === "/login";
      if (r.status !== 401 && !loginPage) { return r; }
      return (loginPage ? Promise.resolve({}) : r.clone().json().catch(function () { return {}; }))
        .then(function (info) {
          ended = info;
          showBanner(info);
          throw new Error("session ended");
        });
    });
  };
  window.__cctvSession = {ended: function () { return ended; }};
})();
