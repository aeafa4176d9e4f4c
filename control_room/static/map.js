// mobile-cctv control room: the street map (Leaflet, vendored) over the offline SVG map.
// Each .mapwrap gets a Leaflet map with the configured tile server; when its first tile loads the
// street map shows, when tiles fail (or none arrive in 10 s) the SVG map stays. Units are circles
// coloured by state, grouped into counted clusters on a 56 px grid when they crowd; sites are squares.
// A map with data-pick fills that form's lat/lon when clicked. Live pages send "cctv:points" events.
(function () {
  "use strict";

  var CELL_PX = 56;
  var TILE_TIMEOUT_MS = 10000;
  var SITES_FROM_ZOOM = 11;
  var RANK = {offline: 0, attention: 1, online: 2};
  var maps = [];
  window.__cctvMaps = maps;

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }

  function readPoints(wrap) {
    var el = wrap.querySelector(".map-points");
    if (!el && wrap.dataset.pointsFrom) {
      el = document.querySelector(wrap.dataset.pointsFrom + " .map-points");
    }
    try { return el ? JSON.parse(el.textContent) : []; } catch (e) { return []; }
  }

  function TileMap(wrap) {
    var self = this;
    this.wrap = wrap;
    this.points = {};
    this.loaded = false;
    this.map = L.map(wrap.querySelector(".tilemap"), {zoomControl: true});
    var tiles = L.tileLayer(wrap.dataset.tiles, {
      maxZoom: parseInt(wrap.dataset.maxZoom || "19", 10),
      attribution: escapeHtml(wrap.dataset.attribution || ""),
    });
    tiles.on("tileload", function () {
      if (self.loaded) { return; }
      self.loaded = true;
      wrap.classList.remove("tiles-failed");
      wrap.classList.add("tiles-ok");
      self.map.invalidateSize();
    });
    tiles.on("tileerror", function () { if (!self.loaded) { self.fail(); } });
    setTimeout(function () { if (!self.loaded) { self.fail(); } }, TILE_TIMEOUT_MS);
    tiles.addTo(this.map);
    this.layer = L.layerGroup().addTo(this.map);
    this.map.on("zoomend", function () { self.render(); });
    this.setPoints(readPoints(wrap), true);
    this.fit();
    if (wrap.dataset.pick) { this.enablePick(document.getElementById(wrap.dataset.pick)); }
  }

  TileMap.prototype.fail = function () {
    this.wrap.classList.add("tiles-failed");
  };

  TileMap.prototype.setPoints = function (points, replace) {
    var self = this;
    if (replace) { this.points = {}; }
    points.forEach(function (p) { self.points[p.kind + ":" + p.id] = p; });
    if (this.map.getZoom() !== undefined && this.map._loaded) { this.render(); }
  };

  TileMap.prototype.fit = function () {
    var all = Object.keys(this.points).map(function (k) { return this.points[k]; }, this);
    if (all.length === 0) {
      var lat = parseFloat(this.wrap.dataset.lat), lon = parseFloat(this.wrap.dataset.lon);
      this.map.setView(isNaN(lat) ? [52.5, -1.5] : [lat, lon], isNaN(lat) ? 6 : 15);
    } else {
      var bounds = L.latLngBounds(all.map(function (p) { return [p.lat, p.lon]; }));
      this.map.fitBounds(bounds, {padding: [30, 30], maxZoom: 16});
    }
    this.render();
  };

  TileMap.prototype.render = function () {
    var map = this.map, zoom = map.getZoom(), layer = this.layer, cells = {};
    layer.clearLayers();
    Object.keys(this.points).forEach(function (key) {
      var p = this.points[key];
      if (p.kind === "site") {
        if (zoom >= SITES_FROM_ZOOM) {
          L.marker([p.lat, p.lon], {
            icon: L.divIcon({className: "site-marker", iconSize: [12, 12]}), title: "site " + p.label,
          }).on("click", function () { window.location.href = p.href; }).addTo(layer);
        }
        return;
      }
      var px = map.project([p.lat, p.lon], zoom);
      var cell = Math.floor(px.x / CELL_PX) + ":" + Math.floor(px.y / CELL_PX);
      (cells[cell] = cells[cell] || []).push(p);
    }, this);
    Object.keys(cells).forEach(function (cell) {
      var members = cells[cell];
      if (members.length === 1) {
        var p = members[0];
        L.circleMarker([p.lat, p.lon], {
          radius: 7, weight: 2, color: "#fff", fillOpacity: 1, className: "unit-marker unit-" + p.state,
        }).bindTooltip(escapeHtml(p.label + " (" + p.state + ")"))
          .on("click", function () { window.location.href = p.href; }).addTo(layer);
        return;
      }
      var worst = members.reduce(function (w, p) { return RANK[p.state] < RANK[w] ? p.state : w; }, "online");
      var bounds = L.latLngBounds(members.map(function (p) { return [p.lat, p.lon]; }));
      L.marker(bounds.getCenter(), {
        icon: L.divIcon({className: "cluster-marker cluster-" + worst, html: String(members.length),
                         iconSize: [34, 34]}),
        title: members.length + " units",
      }).on("click", function () { map.fitBounds(bounds, {padding: [40, 40]}); }).addTo(layer);
    });
  };

  TileMap.prototype.enablePick = function (form) {
    if (!form) { return; }
    var marker = null, map = this.map;
    map.getContainer().classList.add("picking");
    map.on("click", function (e) {
      form.elements.lat.value = e.latlng.lat.toFixed(6);
      form.elements.lon.value = e.latlng.lng.toFixed(6);
      if (marker) { marker.setLatLng(e.latlng); } else {
        marker = L.circleMarker(e.latlng, {radius: 8, className: "picked-marker"}).addTo(map);
      }
    });
  };

  document.addEventListener("cctv:points", function (e) {
    maps.forEach(function (m) {
      if (m.wrap.dataset.pointsFrom && e.detail.source.matches(m.wrap.dataset.pointsFrom)) {
        m.setPoints(e.detail.points, e.detail.replace);
      }
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof L === "undefined") { return; }
    document.querySelectorAll(".mapwrap[data-tiles]").forEach(function (wrap) {
      if (!wrap.dataset.tiles) { return; }
      try { maps.push(new TileMap(wrap)); } catch (e) { wrap.classList.add("tiles-failed"); }
    });
  });
})();
