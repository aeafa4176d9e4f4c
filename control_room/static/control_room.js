// mobile-cctv control room: keeps pages current without reloading (hand-written, no dependencies).
// Elements with data-poll-url get their content replaced by the server-rendered (escaped) fragment;
// tables with data-feed-url get new rows prepended from a small JSON endpoint.
(function () {
  "use strict";

  function every(ms, fn) {
    var busy = false;
    setInterval(function () {
      if (busy || document.hidden) { return; }
      busy = true;
      fn().catch(function () {}).then(function () { busy = false; });
    }, ms);
  }

  function pollFragment(el) {
    var ms = parseInt(el.dataset.pollMs || "5000", 10);
    every(ms, function () {
      return fetch(el.dataset.pollUrl, {credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
        .then(function (html) { el.innerHTML = html; });
    });
  }

  function pollFeed(table) {
    var ms = parseInt(table.dataset.pollMs || "5000", 10);
    var body = table.tBodies[0];
    every(ms, function () {
      var url = new URL(table.dataset.feedUrl, window.location.href);
      url.searchParams.set("after", table.dataset.latestId || "0");
      return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
        .then(function (data) {
          if (!data.html) { return; }
          var tpl = document.createElement("template");
          tpl.innerHTML = data.html;
          var empty = body.querySelector("tr.empty");
          if (empty) { empty.remove(); }
          body.insertBefore(tpl.content, body.firstChild);
          table.dataset.latestId = String(data.latest_id);
        });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll-url]").forEach(pollFragment);
    document.querySelectorAll("table[data-feed-url]").forEach(pollFeed);
  });
})();
