/* chargeops dashboard: helpers shared by the fleet and station pages.
 *
 * No framework and no build step. Text always goes in through textContent (never innerHTML), so nothing
 * a charger or a config file says can become markup. The API token travels in the HttpOnly cookie the
 * controller set; fetch and EventSource calls are same-origin and carry it.
 */
"use strict";

const Chargeops = (() => {
  const config = JSON.parse(document.getElementById("chargeops-config").textContent || "{}");

  const HEALTH = ["Healthy", "Progressing", "Degraded", "Offline", "Missing"];
  const SYNC = ["Synced", "OutOfSync", "Unknown"];

  /** el("td", {class: "x", dataset: {a: "b"}}, "text", child...) */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function shortRevision(rev) {
    if (!rev) return "—";
    return /^[0-9a-f]{40}$/i.test(rev) ? rev.slice(0, 8) : (rev.length > 24 ? rev.slice(0, 24) + "…" : rev);
  }

  function ago(iso) {
    if (!iso) return "never";
    const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (seconds < 60) return `${seconds} s ago`;
    if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
    return `${Math.round(seconds / 86400)} d ago`;
  }

  function badge(kind, value) {
    return el("span", {class: `badge ${kind}-${value}`}, value);
  }

  function connectorList(connectors) {
    const shown = (connectors || []).filter((c) => c.id > 0 || c.status.toLowerCase() !== "available");
    if (!shown.length) return el("span", {class: "muted"}, "—");
    return el("span", {class: "connectors"}, shown.map((c) =>
      el("span", {class: `conn conn-${c.status.toLowerCase()}`, title: c.errorCode && c.errorCode !== "NoError"
        ? `${c.status} (${c.errorCode})` : c.status, dataset: {connector: String(c.id)}},
        `${c.id === 0 ? "station" : c.id}: ${c.status}`)));
  }

  function banner(container, snap) {
    container.replaceChildren(
      el("span", {}, "Revision in force ", el("code", {id: "rev-current", title: snap.revision || ""},
        shortRevision(snap.revision))),
      el("span", {}, "applied to the fleet ", el("code", {title: snap.appliedRevision || ""},
        shortRevision(snap.appliedRevision))),
      snap.source ? el("span", {class: "muted"}, `from ${snap.source.kind || "source"} ${snap.source.location || ""}`
        + (snap.source.ref ? ` (${snap.source.ref})` : "")) : null,
    );
  }

  function alerts(container, snap) {
    const items = [];
    if (snap.failedRevision) {
      const f = snap.failedRevision;
      items.push(el("div", {class: "alert alert-failed", id: "alert-failed"},
        el("strong", {}, `Commit ${shortRevision(f.revision)} was refused`),
        ` — still running ${shortRevision(snap.revision)}.`,
        el("ul", {}, (f.errors || []).map((e) => el("li", {}, el("code", {}, e.location), " ", e.message)))));
    }
    if (snap.held) {
      const h = snap.held;
      items.push(el("div", {class: "alert alert-held", id: "alert-held"},
        el("strong", {}, `Removals held for ${shortRevision(h.revision)}`), ` — ${h.reason} `,
        el("span", {class: "muted"}, `Confirm with POST /api/v1/revisions/${h.revision}/confirm.`)));
    }
    const ro = snap.rollout;
    if (ro && !ro.done) {
      items.push(el("div", {class: `alert ${ro.paused ? "alert-paused" : "alert-rollout"}`, id: "alert-rollout"},
        el("strong", {}, ro.paused ? "Rollout paused" : "Rollout in progress"),
        ` — revision ${shortRevision(ro.revision)}, wave ${ro.wave} of ${ro.waves.length}, `
        + `${ro.converged}/${ro.stations} stations converged`
        + (ro.failed && ro.failed.length ? `, failed: ${ro.failed.join(", ")}` : "") + ".",
        ro.paused ? el("span", {class: "muted"}, " Resume with POST /api/v1/rollout/resume.") : null));
    }
    container.replaceChildren(...items);
  }

  /** Subscribe to the fleet snapshots; `onSnapshot(snap)` on each; the header shows the connection. */
  function live(onSnapshot) {
    const indicator = document.getElementById("live");
    const set = (state, text) => { indicator.dataset.state = state; indicator.textContent = text; };
    const source = new EventSource("/api/v1/events");
    source.addEventListener("fleet", (event) => {
      set("live", "live");
      onSnapshot(JSON.parse(event.data));
    });
    source.addEventListener("open", () => set("live", "live"));
    source.addEventListener("error", () => set("down", source.readyState === EventSource.CLOSED
      ? "disconnected (reload the page)" : "reconnecting…"));
    return source;
  }

  return {config, HEALTH, SYNC, el, shortRevision, ago, badge, connectorList, banner, alerts, live};
})();
