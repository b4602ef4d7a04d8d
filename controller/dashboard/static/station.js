/* chargeops dashboard: one station — its status (live from the fleet snapshots), desired vs observed
 * configuration, the pending plan, recent sessions and audit entries (GET /api/v1/stations/{identity},
 * fetched again whenever the station's entry in the snapshot changes). idTags arrive masked.
 */
"use strict";

(() => {
  const {config, el, shortRevision, ago, badge, connectorList, banner, alerts, live} = Chargeops;
  const identity = config.identity;
  let lastEntry = null;
  let timer = null;

  document.title = `chargeops — ${identity}`;
  document.getElementById("title").textContent = identity;

  function drawStatus(entry) {
    const dl = document.getElementById("status");
    if (!entry) {
      dl.replaceChildren(el("dt", {}, "Status"), el("dd", {}, "not in the fleet"));
      return;
    }
    document.getElementById("title").textContent = `${entry.displayName} (${entry.identity})`;
    const row = (label, value, cls) => [el("dt", {}, label), el("dd", {class: cls}, value)];
    dl.replaceChildren(
      ...row("Health", badge("health", entry.health), "health"),
      ...row("Sync", badge("sync", entry.sync), "sync"),
      ...row("Connection", entry.online ? "online" : "offline", "online"),
      ...row("Last seen", ago(entry.lastSeen), "last-seen"),
      ...row("Connectors", connectorList(entry.connectors), "connectors-cell"),
      ...row("Open sessions", String(entry.openSessions), "sessions"),
      ...row("Revision applied", el("code", {title: entry.lastAppliedRevision || ""},
        shortRevision(entry.lastAppliedRevision)), "revision"),
      ...row("Site", entry.site || "—"),
      ...row("Visibility", entry.visibility || "—"),
      ...row("Activated", entry.activated ? "yes" : "no"),
    );
    document.getElementById("error").textContent = entry.lastError || "";
  }

  function text(value) {
    if (value === null || value === undefined) return "";
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  function drawDetail(detail) {
    document.getElementById("plan").textContent = detail.planText && detail.plan.actions.length
      ? detail.planText : "Nothing to change: the station matches the desired state.";
    const desired = detail.desiredConfiguration || {};
    const observed = detail.observedConfiguration || {};
    const keys = [...new Set([...Object.keys(desired), ...Object.keys(observed)])].sort();
    document.querySelector("#config tbody").replaceChildren(...keys.map((key) => {
      const d = key in desired ? desired[key] : null;
      const o = key in observed ? observed[key] : null;
      const state = /^authorizationkey$/i.test(key) ? "secret: never shown"
        : d === null ? "not declared" : o === null ? "not read back" : String(d) === String(o) ? "" : "differs";
      return el("tr", {class: state === "differs" ? "differs" : null},
        el("td", {class: "mono"}, key), el("td", {class: "mono"}, d === null ? "—" : d),
        el("td", {class: "mono"}, o === null ? "—" : o), el("td", {class: "muted"}, state));
    }));
    document.querySelector("#sessions tbody").replaceChildren(...(detail.sessions || []).slice(0, 20).map((s) =>
      el("tr", {}, el("td", {}, String(s.id)), el("td", {}, s.connector === null ? "—" : String(s.connector)),
        el("td", {}, s.status), el("td", {class: "mono id-tag"}, s.idTag || "—"), el("td", {}, s.start || "—"),
        el("td", {}, s.stop || "—"),
        el("td", {class: "num"}, s.meterStop !== null && s.meterStart !== null ? `${s.meterStop - s.meterStart} Wh` : "—"))));
    document.querySelector("#audit tbody").replaceChildren(...(detail.audit || []).slice(0, 30).map((a) =>
      el("tr", {}, el("td", {}, a.at), el("td", {}, a.action), el("td", {class: "mono"}, shortRevision(a.revision)),
        el("td", {class: "mono detail"}, text(a.detail)))));
  }

  async function load() {
    const answer = await fetch(`/api/v1/stations/${encodeURIComponent(identity)}`,
      {credentials: "same-origin", headers: {Accept: "application/json"}});
    if (!answer.ok) {
      document.getElementById("error").textContent = answer.status === 404
        ? "This station is not known to the controller." : `Could not load the station (HTTP ${answer.status}).`;
      return;
    }
    drawDetail(await answer.json());
    document.body.dataset.ready = "true";
  }

  live((snap) => {
    banner(document.getElementById("revision"), snap);
    alerts(document.getElementById("alerts"), snap);
    const entry = snap.stations.find((s) => s.identity.toUpperCase() === identity.toUpperCase()) || null;
    drawStatus(entry);
    const key = JSON.stringify(entry);
    if (key !== lastEntry) {
      lastEntry = key;
      clearTimeout(timer);
      timer = setTimeout(load, 200);
    }
  });
  load();
})();
