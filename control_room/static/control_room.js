// mobile-cctv control room: keeps pages current without reloading (hand-written, no dependencies).
// Elements with data-poll-url get their content replaced by the server-rendered (escaped) fragment;
// the events table (data-feed-url) asks only for what changed since its cursors: new rows are
// prepended, changed rows replaced in place; a new event can beep, raise a notification and shows in
// the tab title. <time data-age> elements count up ("3 min ago") against the server's clock.
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

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) {
        var type = r.headers.get("Content-Type") || "";
        if (!r.ok || type.indexOf("application/json") !== 0) { throw new Error(String(r.status)); }
        return r.json();
      });
  }

  function pollFragment(el) {
    var ms = parseInt(el.dataset.pollMs || "5000", 10);
    every(ms, function () {
      return fetch(el.dataset.pollUrl, {credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
        .then(function (html) { el.innerHTML = html; refreshAges(el); });
    });
  }

  function fragment(html) {
    var tpl = document.createElement("template");
    tpl.innerHTML = html;
    return tpl.content;
  }

  // ---------------------------------------------------------------- relative ages
  function humanAge(seconds) {
    seconds = Math.max(0, seconds);
    var sizes = [[86400, "d"], [3600, "h"], [60, "min"]];
    for (var i = 0; i < sizes.length; i++) {
      if (seconds >= sizes[i][0]) { return Math.round(seconds / sizes[i][0]) + " " + sizes[i][1]; }
    }
    return Math.round(seconds) + " s";
  }

  function refreshAges(root) {
    (root || document).querySelectorAll("time[data-age]").forEach(function (el) {
      var then = Date.parse(el.getAttribute("datetime"));
      var serverNow = Date.parse(el.dataset.now || "");
      if (isNaN(then)) { return; }
      if (!el.dataset.seen) { el.dataset.seen = String(Date.now()); }
      var now = isNaN(serverNow) ? Date.now() : serverNow + (Date.now() - parseInt(el.dataset.seen, 10));
      el.textContent = humanAge((now - then) / 1000) + " ago";
    });
  }

  // ---------------------------------------------------------------- alerts for new events
  var alerts = {beeps: 0, notifications: 0, audio: null};
  window.__cctvAlerts = alerts;

  function soundOn() { return window.localStorage && localStorage.getItem("cctv.sound") === "1"; }

  function beep() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    alerts.beeps += 1;
    if (!Ctx) { return; }
    try {
      alerts.audio = alerts.audio || new Ctx();
      var osc = alerts.audio.createOscillator(), gain = alerts.audio.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.08;
      osc.connect(gain);
      gain.connect(alerts.audio.destination);
      osc.start();
      osc.stop(alerts.audio.currentTime + 0.2);
    } catch (e) { /* no audio device: the title and the row still show it */ }
  }

  function notify(count) {
    if (!("Notification" in window) || Notification.permission !== "granted") { return; }
    alerts.notifications += 1;
    try {
      new Notification("Mobile CCTV: " + count + " new event" + (count === 1 ? "" : "s"),
                       {body: "Open the control room's events list.", tag: "cctv-events"});
    } catch (e) { /* some browsers only allow notifications from a service worker */ }
  }

  function setupAlerts() {
    var sound = document.getElementById("alert-sound");
    if (sound) {
      sound.checked = soundOn();
      sound.addEventListener("change", function () {
        localStorage.setItem("cctv.sound", sound.checked ? "1" : "0");
        if (sound.checked) { beep(); }  // a click lets the page play sound, and tests the speaker
      });
    }
    var button = document.getElementById("alert-notify"), state = document.getElementById("alert-notify-state");
    if (!button || !("Notification" in window)) { return; }
    function show() {
      button.hidden = Notification.permission !== "default";
      state.textContent = Notification.permission === "granted" ? "Desktop notifications on." :
        Notification.permission === "denied" ? "Desktop notifications are blocked in this browser." : "";
    }
    button.addEventListener("click", function () { Notification.requestPermission().then(show); });
    show();
  }

  function setCount(count) {
    var badge = document.getElementById("unreviewed");
    if (badge) {
      badge.dataset.count = String(count);
      badge.textContent = count + " new";
    }
    var base = document.title.replace(/^\(\d+\) /, "");
    document.title = (count > 0 ? "(" + count + ") " : "") + base;
  }

  // ---------------------------------------------------------------- the events list's feed
  function pollFeed(table) {
    var ms = parseInt(table.dataset.pollMs || "5000", 10);
    var body = table.tBodies[0];
    var badge = document.getElementById("unreviewed");
    if (badge) { setCount(parseInt(badge.dataset.count || "0", 10)); }
    every(ms, function () {
      var url = new URL(table.dataset.feedUrl, window.location.href);
      url.searchParams.set("after", table.dataset.latestId || "0");
      url.searchParams.set("actions", table.dataset.actions || "0");
      url.searchParams.set("t", table.dataset.t || "");
      return getJSON(url).then(function (data) {
        Object.keys(data.changed || {}).forEach(function (pk) {
          var old = document.getElementById("event-" + pk);
          if (old) { old.replaceWith(fragment(data.changed[pk])); }
        });
        if (data.html) {
          var empty = body.querySelector("tr.empty");
          if (empty) { empty.remove(); }
          body.insertBefore(fragment(data.html), body.firstChild);
          if (soundOn()) { beep(); }
          notify(data.count);
        }
        table.dataset.latestId = String(data.latest_id);
        table.dataset.actions = String(data.actions);
        table.dataset.t = data.t;
        setCount(data.unreviewed);
        refreshAges(table);
      });
    });
  }

  // ---------------------------------------------------------------- the fleet table's changes
  function points(root) {
    var el = root.querySelector(".map-points");
    try { return el ? JSON.parse(el.textContent) : []; } catch (e) { return []; }
  }

  function sendPoints(root, list, replace) {
    document.dispatchEvent(new CustomEvent("cctv:points", {detail: {source: root, points: list, replace: replace}}));
  }

  function liveFleet(root) {
    var ms = parseInt(root.dataset.pollMs || "5000", 10);
    var state = function () { return root.querySelector("#fleet-state"); };

    function resync() {
      return fetch(root.dataset.liveUrl, {credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (r) {
          var type = r.headers.get("Content-Type") || "";
          if (!r.ok || type.indexOf("text/html") !== 0 || r.redirected) { throw new Error(String(r.status)); }
          return r.text();
        })
        .then(function (html) {
          root.innerHTML = html;
          refreshAges(root);
          sendPoints(root, points(root), true);
        });
    }

    every(ms, function () {
      var url = new URL(root.dataset.changesUrl, window.location.href);
      url.searchParams.set("t", state() ? state().dataset.t : "");
      return getJSON(url).then(function (data) {
        if (data.resync) { return resync(); }
        var missing = false, table = root.querySelector("#fleet-table tbody");
        Object.keys(data.rows || {}).forEach(function (pk) {
          var old = document.getElementById("unit-" + pk);
          if (old) { old.replaceWith(fragment(data.rows[pk])); } else { missing = true; }
        });
        (data.hide || []).forEach(function (pk) {
          var old = document.getElementById("unit-" + pk);
          if (old) { old.remove(); }
        });
        if (data.summary) { root.querySelector("#fleet-summary").innerHTML = data.summary; }
        if (data.points && data.points.length) { sendPoints(root, data.points, false); }
        state().dataset.t = data.t;
        refreshAges(table);
        if (missing && state().dataset.pages === "1") { return resync(); }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll-url]").forEach(pollFragment);
    document.querySelectorAll("[data-changes-url]").forEach(liveFleet);
    document.querySelectorAll("table[data-feed-url]").forEach(pollFeed);
    setupAlerts();
    refreshAges(document);
    setInterval(function () { refreshAges(document); }, 15000);
  });
})();
