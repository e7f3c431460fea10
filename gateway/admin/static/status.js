"use strict";
(function () {
  var params = new URLSearchParams(window.location.search);
  var refresh = parseFloat(params.get("refresh"));
  if (!(refresh >= 0.5 && refresh <= 3600)) { refresh = 5; }
  var ticks = 0;
  var stopped = false;

  // Build elements with textContent only: every string from the server is untrusted.
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function add(parent) {
    for (var i = 1; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) { continue; }
      parent.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return parent;
  }
  function secs(s) {
    if (s === null || s === undefined) { return ""; }
    s = Number(s);
    if (s >= 3600) { return (s / 3600).toFixed(1) + " h"; }
    if (s >= 60) { return Math.round(s / 60) + " min"; }
    return s.toFixed(s < 10 ? 1 : 0) + " s";
  }
  function stateLabel(m) {
    switch (m.state) {
      case "ok": return "ok";
      case "cooling": return "cooling";
      case "breaker_open": return "breaker open";
      case "withdrawn": return "withdrawn (vendor)";
      case "access_denied": return "access denied";
      case "withdrawn_by_operator": return "withdrawn";
      case "drill": return "drill";
      default: return String(m.state);
    }
  }
  function details(m) {
    var out = [];
    if (m.state === "withdrawn_by_operator" && m.withdrawal) {
      var w = m.withdrawal;
      out.push("withdrawn by " + w.actor + " (admin key " + w.admin_key + ") at " + w.created_at + ": " + w.reason +
               (w.reference ? " [" + w.reference + "]" : ""));
    } else if (m.state === "drill" && m.drill) {
      var d = m.drill;
      out.push("drill by " + d.actor + " until " + d.until + " (" + secs(d.remaining_s) + " left): " + d.reason);
    } else if (m.state === "cooling") {
      out.push("cooling for " + secs(m.until_in_s));
    } else if (m.state === "breaker_open") {
      out.push("breaker open for " + secs(m.until_in_s));
    } else if (m.state === "withdrawn" || m.state === "access_denied") {
      out.push("upstream says " + stateLabel(m) + " (recheck in " + secs(m.until_in_s) + ")" +
               (m.reason ? ": " + m.reason : ""));
    }
    if (m.breaker && m.breaker !== "closed" && m.state !== "breaker_open") { out.push("breaker " + m.breaker); }
    (m.denied_by_policies || []).forEach(function (p) {
      out.push("denied for some callers by policy " + p.policy + ": " + p.reason);
    });
    var keys = (m.denied_callers || []).map(function (c) { return c.key + " (" + c.policy + ")"; });
    if (keys.length) { out.push("denied for keys: " + keys.join(", ")); }
    return out;
  }
  function badge(m) {
    var b = el("span", "badge " + m.state, stateLabel(m));
    b.setAttribute("data-testid", "state");
    return b;
  }
  function policyBadge(m) {
    if (!(m.denied_by_policies || []).length && !(m.denied_callers || []).length) { return null; }
    return el("span", "badge policy", "policy");
  }
  function table(headers, rows) {
    var t = el("table"), thead = el("thead"), tr = el("tr"), tbody = el("tbody");
    headers.forEach(function (h) { tr.appendChild(el("th", null, h)); });
    add(t, add(thead, tr), tbody);
    rows.forEach(function (r) { tbody.appendChild(r); });
    return t;
  }
  function cell(content, cls) {
    var td = el("td", cls);
    if (content instanceof Node) { td.appendChild(content); return td; }
    td.textContent = content === null || content === undefined ? "" : String(content);
    return td;
  }
  function detailBlock(lines) {
    var div = el("div");
    lines.forEach(function (l) { div.appendChild(el("div", "detail", l)); });
    return div;
  }

  function renderConfig(d) {
    var dl = document.getElementById("config");
    var c = d.config || {};
    var r = c.last_reload;
    var items = [["config version", c.version], ["loaded", c.loaded_at],
                 ["last reload", r ? r.result + " at " + r.at + " (" + r.trigger + ")" +
                  (r.errors && r.errors.length ? ": " + r.errors.join(" | ") : "") : "none since start"],
                 ["signed in as", d.you]];
    var nodes = items.map(function (it) {
      var div = el("div");
      div.setAttribute("data-testid", "config-" + it[0].replace(/ /g, "-"));
      return add(div, el("dt", null, it[0]), el("dd", null, it[1]));
    });
    dl.replaceChildren.apply(dl, nodes);
  }
  function renderRoutes(d) {
    var rows = (d.routes || []).map(function (r) {
      var tr = el("tr");
      tr.setAttribute("data-testid", "route");
      tr.setAttribute("data-route", r.name);
      var name = add(el("div"), el("div", "name", r.name));
      if (r.aliases && r.aliases.length) { name.appendChild(el("div", "muted", "aliases: " + r.aliases.join(", "))); }
      if (!r.healthy_fallback) {
        name.appendChild(el("div", "flag", r.usable.length ? "no healthy fallback" : "NO USABLE MODEL"));
      }
      var chain = el("div", "chain");
      r.models.forEach(function (mname, i) {
        var m = (d.models || {})[mname] || {state: "unknown"};
        if (i) { chain.appendChild(el("span", "arrow", "\u2192")); }
        var hop = el("div", "hop");
        hop.setAttribute("data-testid", "hop");
        hop.setAttribute("data-model", mname);
        add(hop, add(el("div"), el("span", "name", mname), " ", badge(m), " ", policyBadge(m)),
            el("div", "meta", (m.vendor || "") + " \u00b7 " + (m.provider || "")), detailBlock(details(m)));
        chain.appendChild(hop);
      });
      var refusal = r.on_refusal + (r.refusal_fallbacks.length ? " \u2192 " + r.refusal_fallbacks.join(", ") : "");
      return add(tr, cell(name), cell(chain), cell(refusal));
    });
    var box = document.getElementById("routes");
    box.replaceChildren(table(["route", "chain (in order)", "on refusal"], rows));
  }
  function renderModels(d) {
    var rows = Object.keys(d.models || {}).map(function (name) {
      var m = d.models[name];
      var tr = el("tr");
      tr.setAttribute("data-testid", "model");
      tr.setAttribute("data-model", name);
      return add(tr, cell(name), cell(m.vendor), cell(m.provider), cell(m.jurisdiction),
                 cell(add(el("span"), badge(m), " ", policyBadge(m))), cell(detailBlock(details(m))));
    });
    document.getElementById("models").replaceChildren(
      table(["model", "vendor", "provider", "jurisdiction", "state", "details"], rows));
  }
  // The fleet's view (state.backend: redis): the shared store's health, every replica's workers with their last
  // heartbeat, and the marks this worker adopted from the others. Hidden for a single process.
  function renderFleet(d) {
    var section = document.getElementById("fleet-section");
    var f = d.fleet;
    if (!f) { section.hidden = true; return; }
    section.hidden = false;
    var store = el("p", f.state_store === "up" ? "muted" : "flag",
                   "shared state store: " + f.state_store + " · this worker " + f.this_worker +
                   " on replica " + f.this_replica);
    store.setAttribute("data-testid", "fleet-store");
    var rows = [];
    Object.keys(f.replicas || {}).sort().forEach(function (rep) {
      (f.replicas[rep] || []).forEach(function (w) {
        var tr = el("tr");
        tr.setAttribute("data-testid", "fleet-worker");
        tr.setAttribute("data-replica", rep);
        add(tr, cell(rep), cell(w.worker), cell(w.pid), cell(secs(w.last_seen_s) + " ago"),
            cell(el("span", "badge " + (w.live ? "ok" : "breaker_open"), w.live ? "live" : "silent")));
        rows.push(tr);
      });
    });
    var marks = Object.keys(f.remote_marks || {}).sort().map(function (m) {
      var r = f.remote_marks[m];
      var tr = el("tr");
      tr.setAttribute("data-testid", "fleet-mark");
      return add(tr, cell(m), cell(r.state), cell(secs(r.until_in_s)), cell(r.by));
    });
    var parts = [store];
    if (f.state_store === "up") {
      parts.push(table(["replica", "worker", "pid", "last heartbeat", "state"], rows));
    } else {
      parts.push(el("p", "flag", "Redis unreachable: each worker serves from its own last known state."));
    }
    if (marks.length) {
      parts.push(el("h3", null, "Marks shared by other workers"));
      parts.push(table(["model", "state", "for", "seen by"], marks));
    }
    document.getElementById("fleet").replaceChildren.apply(document.getElementById("fleet"), parts);
  }
  function attemptsText(attempts) {
    return (attempts || []).map(function (a) {
      return a.model + " (" + a.outcome + (a.status ? " " + a.status : "") + ")";
    }).join(" \u2192 ");
  }
  function renderRecent(d) {
    var rec = d.recent || {};
    var note = !rec.enabled ? "The audit log is disabled: no recent history." : rec.error;
    function box(id, items, kind) {
      var target = document.getElementById(id);
      if (note) { target.replaceChildren(el("p", "muted", note)); return; }
      if (!items.length) {
        target.replaceChildren(el("p", "muted", "None in the last " + secs(rec.window_s) + "."));
        return;
      }
      var rows = items.map(function (x) {
        var tr = el("tr");
        tr.setAttribute("data-testid", kind);
        var what = kind === "failover" ? x.reasons.join(", ")
          : x.refusals.map(function (r) { return r.model + ": " + r.action; }).join(", ");
        return add(tr, cell(x.time), cell(x.route), cell(x.key_name), cell(what), cell(attemptsText(x.attempts)),
                   cell(x.served || "\u2014"), cell(x.status));
      });
      target.replaceChildren(table(["time (UTC)", "route", "caller key", kind === "failover" ? "why" : "refused",
                                    "attempts", "served by", "status"], rows));
    }
    box("failovers", rec.failovers || [], "failover");
    box("refusals", rec.refusals || [], "refusal");
  }
  function banner(text) {
    var b = document.getElementById("banner");
    if (!text) { b.hidden = true; b.replaceChildren(); return; }
    b.hidden = false;
    b.replaceChildren(document.createTextNode(text));
  }
  function signedOut() {
    stopped = true;
    var b = document.getElementById("banner");
    b.hidden = false;
    var a = el("a", null, "Sign in again");
    a.href = "/status" + window.location.search;
    b.replaceChildren(document.createTextNode("Session expired or revoked. "), a);
  }

  function tick() {
    fetch("/status/data", {credentials: "same-origin", cache: "no-store", headers: {accept: "application/json"}})
      .then(function (r) {
        if (r.status === 401 || r.status === 403) { signedOut(); return null; }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      })
      .then(function (d) {
        if (!d) { return; }
        renderConfig(d); renderRoutes(d); renderModels(d); renderFleet(d); renderRecent(d);
        banner(null);
        ticks += 1;
        var u = document.getElementById("updated");
        u.setAttribute("data-ticks", String(ticks));
        u.textContent = "updated " + new Date().toLocaleTimeString() + " \u00b7 every " + refresh + " s";
      })
      .catch(function (e) { banner("Cannot load the gateway state: " + e.message + " (retrying)"); })
      .finally(function () { if (!stopped) { window.setTimeout(tick, refresh * 1000); } });
  }
  document.addEventListener("DOMContentLoaded", tick);
})();
