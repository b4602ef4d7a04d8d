/* chargeops dashboard: the fleet page — map coloured by health, the fleet table with filters, revision,
 * held / failed commit and rollout, all redrawn from each fleet snapshot the event stream sends.
 *
 * The map is Leaflet (bundled) with circle markers; tiles only when the controller is configured with a
 * tile URL, else (or when tiles fail to load) a plain grid, so the page works with no internet.
 */
"use strict";

(() => {
  const {config, HEALTH, SYNC, el, shortRevision, ago, badge, connectorList, banner, alerts, live} = Chargeops;
  const COLOURS = {Healthy: "#2e7d32", Progressing: "#1565c0", Degraded: "#ef6c00", Offline: "#616161",
                   Missing: "#8e24aa"};
  const FAULT = "#c62828";
  let snapshot = null;

  // --- filters -------------------------------------------------------------------------------------------
  const fHealth = document.getElementById("filter-health");
  const fSync = document.getElementById("filter-sync");
  const fText = document.getElementById("filter-text");
  HEALTH.forEach((h) => fHealth.append(el("option", {value: h}, h)));
  SYNC.forEach((s) => fSync.append(el("option", {value: s}, s)));
  const params = new URLSearchParams(location.search);
  fHealth.value = params.get("health") || "";
  fSync.value = params.get("sync") || "";
  fText.value = params.get("q") || "";
  for (const input of [fHealth, fSync, fText]) {
    input.addEventListener("input", () => {
      const next = new URLSearchParams();
      if (fHealth.value) next.set("health", fHealth.value);
      if (fSync.value) next.set("sync", fSync.value);
      if (fText.value) next.set("q", fText.value);
      history.replaceState(null, "", next.toString() ? `?${next}` : location.pathname);
      drawTable();
    });
  }
  document.getElementById("filters").addEventListener("submit", (e) => e.preventDefault());

  function matches(st) {
    if (fHealth.value && st.health !== fHealth.value) return false;
    if (fSync.value && st.sync !== fSync.value) return false;
    const q = fText.value.trim().toLowerCase();
    if (!q) return true;
    return [st.identity, st.name, st.displayName, st.site].some((v) => v && String(v).toLowerCase().includes(q));
  }

  // --- map -----------------------------------------------------------------------------------------------
  const mapNode = document.getElementById("map");
  const mapNote = document.getElementById("map-note");
  const map = L.map(mapNode, {attributionControl: Boolean(config.tiles), zoomControl: true});
  const markers = new Map();
  let fitted = false;

  function plainGrid(reason) {
    mapNode.classList.add("no-tiles");
    mapNote.textContent = reason;
  }

  if (config.tiles) {
    let loaded = 0;
    let failed = 0;
    const layer = L.tileLayer(config.tiles, {maxZoom: 19, attribution: config.attribution || ""});
    layer.on("tileload", () => { loaded += 1; mapNode.classList.remove("no-tiles"); mapNote.textContent = ""; });
    layer.on("tileerror", () => {
      failed += 1;
      if (!loaded) plainGrid("Map tiles could not be loaded: showing the stations on a plain grid.");
    });
    layer.addTo(map);
    setTimeout(() => { if (!loaded && !failed) plainGrid("Map tiles are slow to load: plain grid for now."); }, 4000);
  } else {
    plainGrid("No map tiles configured (CHARGEOPS_MAP_TILES): the stations on a plain grid.");
  }

  const legend = document.getElementById("legend");
  legend.replaceChildren(...HEALTH.map((h) => el("li", {}, el("span", {class: `dot health-${h}`}), h)),
    el("li", {}, el("span", {class: "dot ring"}), "connector faulted"));

  function markerStyle(st) {
    return {radius: 9, weight: st.faulted ? 4 : 2, color: st.faulted ? FAULT : "#ffffff",
            fillColor: COLOURS[st.health] || "#000000", fillOpacity: 0.9};
  }

  function drawMap() {
    const seen = new Set();
    const placed = snapshot.stations.filter((st) => st.coordinates && !st.removed);
    const missing = snapshot.stations.filter((st) => !st.coordinates && !st.removed).length;
    if (!fitted && placed.length) {  // a view first: Leaflet cannot place markers without one
      map.fitBounds(L.latLngBounds(placed.map((st) => [st.coordinates.lat, st.coordinates.lng])).pad(0.25),
        {maxZoom: 16});
      fitted = true;
    } else if (!fitted) {
      map.setView([0, 0], 1);
    }
    for (const st of placed) {
      seen.add(st.identity);
      const at = [st.coordinates.lat, st.coordinates.lng];
      let marker = markers.get(st.identity);
      if (!marker) {
        marker = L.circleMarker(at, {...markerStyle(st), className: "station-marker"}).addTo(map);
        marker.on("click", () => { location.href = `/dashboard/stations/${encodeURIComponent(st.identity)}`; });
        markers.set(st.identity, marker);
      }
      marker.setLatLng(at);
      marker.setStyle(markerStyle(st));
      marker.unbindTooltip();
      marker.bindTooltip(`${st.displayName} (${st.identity}) — ${st.health}${st.faulted ? ", faulted" : ""}`);
      const node = marker.getElement();
      if (node) {
        node.dataset.identity = st.identity;
        node.dataset.health = st.health;
        node.classList.toggle("faulted", st.faulted);
      }
    }
    for (const [identity, marker] of markers) {
      if (!seen.has(identity)) { marker.remove(); markers.delete(identity); }
    }
    const note = missing ? `${missing} station(s) without coordinates are not on the map.` : "";
    document.getElementById("legend").dataset.missing = String(missing);
    if (note && !mapNote.textContent.includes(note)) mapNote.textContent = `${mapNote.textContent} ${note}`.trim();
  }

  // --- counts and table ----------------------------------------------------------------------------------
  function drawCounts() {
    const box = document.getElementById("counts");
    const online = snapshot.online;
    const total = snapshot.stations.filter((s) => !s.removed).length;
    const sessions = snapshot.stations.reduce((n, s) => n + s.openSessions, 0);
    const faulted = snapshot.stations.filter((s) => s.faulted).length;
    box.replaceChildren(
      el("div", {class: "count"}, el("b", {}, String(total)), "stations"),
      el("div", {class: "count"}, el("b", {}, String(online)), "online"),
      el("div", {class: "count"}, el("b", {}, String(sessions)), "open sessions"),
      el("div", {class: `count${faulted ? " bad" : ""}`}, el("b", {id: "count-faulted"}, String(faulted)), "faulted"),
      el("div", {class: "chips"}, HEALTH.filter((h) => snapshot.health[h]).map((h) =>
        el("button", {type: "button", class: `chip health-${h}`, dataset: {health: h}}, `${h} ${snapshot.health[h]}`))),
      el("div", {class: "chips"}, SYNC.filter((s) => snapshot.sync[s]).map((s) =>
        el("button", {type: "button", class: `chip sync-${s}`, dataset: {sync: s}}, `${s} ${snapshot.sync[s]}`))),
    );
    box.querySelectorAll("button[data-health]").forEach((b) => b.addEventListener("click", () => {
      fHealth.value = fHealth.value === b.dataset.health ? "" : b.dataset.health;
      fHealth.dispatchEvent(new Event("input"));
    }));
    box.querySelectorAll("button[data-sync]").forEach((b) => b.addEventListener("click", () => {
      fSync.value = fSync.value === b.dataset.sync ? "" : b.dataset.sync;
      fSync.dispatchEvent(new Event("input"));
    }));
  }

  function notes(st) {
    const out = [];
    if (st.removed) out.push("removed from the repository");
    if (!st.activated && !st.removed) out.push("not activated");
    if (st.held) out.push("removal held");
    if (st.suspended) out.push("suspended (observe only)");
    if (st.waitingForWave) out.push(`waits for wave ${st.waitingForWave}`);
    if (st.pendingChanges) out.push(`${st.pendingChanges} change(s) pending`);
    if (st.stalled) out.push("stalled");
    if (st.lastError) out.push(st.lastError);
    return out.concat(st.notes || []).join("; ");
  }

  function drawTable() {
    if (!snapshot) return;
    const body = document.querySelector("#fleet tbody");
    const rows = snapshot.stations.filter(matches).map((st) => el("tr", {
      dataset: {identity: st.identity, health: st.health, sync: st.sync}, class: st.faulted ? "faulted" : null},
      el("td", {class: "station"}, el("a", {href: `/dashboard/stations/${encodeURIComponent(st.identity)}`},
        st.displayName), el("div", {class: "muted mono"}, st.identity)),
      el("td", {class: "site"}, st.site || "—"),
      el("td", {class: "sync"}, badge("sync", st.sync)),
      el("td", {class: "health"}, badge("health", st.health)),
      el("td", {class: "revision mono", title: st.lastAppliedRevision || ""}, shortRevision(st.lastAppliedRevision)),
      el("td", {class: "last-seen", title: st.lastSeen || "", dataset: {at: st.lastSeen || ""}},
        st.online ? el("span", {class: "online"}, "online") : null, " ", ago(st.lastSeen)),
      el("td", {class: "connectors-cell"}, connectorList(st.connectors)),
      el("td", {class: "sessions num"}, String(st.openSessions)),
      el("td", {class: "notes"}, notes(st)),
    ));
    body.replaceChildren(...rows);
    document.getElementById("shown").textContent = `${rows.length} of ${snapshot.stations.length} shown`;
  }

  setInterval(() => {  // keep "x s ago" current between snapshots
    document.querySelectorAll("#fleet td.last-seen").forEach((td) => {
      const last = td.lastChild;
      if (last && last.nodeType === Node.TEXT_NODE) last.textContent = ago(td.dataset.at || null);
    });
  }, 5000);

  live((snap) => {
    snapshot = snap;
    document.getElementById("owner").textContent = snap.owner ? snap.owner.displayName : "";
    document.body.dataset.revision = snap.revision || "";
    banner(document.getElementById("revision"), snap);
    alerts(document.getElementById("alerts"), snap);
    drawCounts();
    drawTable();
    drawMap();
    document.body.dataset.ready = "true";
  });
})();
