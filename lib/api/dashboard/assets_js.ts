/**
 * The dashboard's script: plain JavaScript, no framework, embedded so the
 * single-file bundle carries it. It reads the JSON API relative to
 * `/dashboard/` (`../api/...`), renders one view per hash route, and polls
 * every 2 s without reloading the page. Text is always set through
 * `textContent`, never as HTML, so names and errors cannot inject markup.
 *
 * @module
 */

/** `/dashboard/app.js`. */
export const APP_JS = String.raw`"use strict";
(function () {
  var POLL_MS = 2000;
  var API = "../api/";
  var view = document.getElementById("view");
  var search = document.getElementById("search");
  var toolbar = document.getElementById("toolbar");
  var banner = document.getElementById("banner");
  var updated = document.getElementById("updated");
  var timer = null;
  var generation = 0;

  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === "text") el.textContent = attrs[k];
      else if (k === "cls") el.className = attrs[k];
      else el.setAttribute(k, attrs[k]);
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined || c === false) continue;
      if (Array.isArray(c)) c.forEach(function (x) { if (x) el.appendChild(typeof x === "string" ? document.createTextNode(x) : x); });
      else el.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return el;
  }
  function badge(text, kind) { return h("span", { cls: "badge " + kind, text: text }); }
  function statusBadge(s) { return badge(s, s === "enabled" || s === "UP" || s === "connected" ? "ok" : s === "warning" ? "warn" : "err"); }
  function errors(list) {
    if (!list || !list.length) return null;
    return h("div", null, list.map(function (e) { return h("pre", { cls: "error-text", text: e }); }));
  }
  function table(headers, rows, attrs) {
    return h("table", attrs || null,
      h("thead", null, h("tr", null, headers.map(function (x) { return h("th", { text: x }); }))),
      h("tbody", null, rows));
  }
  function td() { var el = h("td"); for (var i = 0; i < arguments.length; i++) { var c = arguments[i]; if (c !== null && c !== undefined) el.appendChild(typeof c === "object" ? c : document.createTextNode(String(c))); } return el; }
  function when(iso) { if (!iso) return "never"; var d = new Date(iso); return d.toLocaleString() + " (" + ago(d) + ")"; }
  function ago(d) { var s = Math.round((Date.now() - d.getTime()) / 1000); if (s < 0) return "in " + (-s) + " s"; if (s < 120) return s + " s ago"; if (s < 7200) return Math.round(s / 60) + " min ago"; if (s < 172800) return Math.round(s / 3600) + " h ago"; return Math.round(s / 86400) + " days ago"; }
  function getJson(path) {
    return fetch(API + path, { headers: { accept: "application/json" }, credentials: "same-origin" }).then(function (r) {
      if (r.status === 404) return null;
      if (!r.ok) throw new Error(path + ": HTTP " + r.status);
      return r.json();
    });
  }
  function matches(item, q) { return !q || JSON.stringify(item).toLowerCase().indexOf(q) !== -1; }
  function counts(c) { return h("div", null, h("div", { cls: "big", text: String(c.total) }), h("div", { cls: "muted" }, c.errors + " errors, " + c.warnings + " warnings")); }
  var NO_COUNTS = { total: 0, errors: 0, warnings: 0 };
  function countCards(prefix, group, test) {
    group = group || {};
    return h("div", { cls: "cards", "data-test": test },
      ["routers", "services", "middlewares"].map(function (k) {
        return h("div", { cls: "card", "data-test": test + "-" + k }, h("h3", { text: prefix + " " + k }), counts(group[k] || NO_COUNTS));
      }));
  }
  // One row per router, HTTP or TCP: attr names the row ("data-router", "data-tcp-router"), tls is the TLS cell's text.
  function routerRow(r, attr, tls) {
    var a = {};
    a[attr] = r.name;
    return h("tr", a,
      td(statusBadge(r.status)),
      td(h("strong", { text: r.name }), errors(r.error)),
      td(h("code", { text: r.rule })),
      td((r.entryPoints || []).join(", ")),
      td((r.middlewares || []).join(", ")),
      td(r.service),
      td(tls),
      td(String(r.priority)));
  }
  var ROUTER_HEADERS = ["Status", "Name", "Rule", "Entrypoints", "Middlewares", "Service", "TLS", "Priority"];
  // A TCP router's TLS: none (plain TCP), passthrough (the backend ends TLS), or terminating (Portico ends it).
  function tcpTls(tls) {
    if (!tls) return "none";
    if (tls.passthrough) return "passthrough";
    return "terminating" + (tls.certResolver ? " (resolver " + tls.certResolver + ")" : "");
  }
  function middlewareRow(m, attr) {
    var key = Object.keys(m).filter(function (k) { return k.toLowerCase() === m.type && typeof m[k] === "object"; })[0];
    var cfg = key ? JSON.stringify(m[key]) : "";
    // basicAuth users and other secrets are hashes, but do not put them on a screen anyway.
    if (/auth/i.test(m.type)) cfg = "(options hidden)";
    var a = {};
    a[attr] = m.name;
    return h("tr", a, td(statusBadge(m.status)), td(h("strong", { text: m.name }), errors(m.error)), td(m.type), td(h("code", { text: cfg })), td((m.usedBy || []).join(", ")));
  }
  var MIDDLEWARE_HEADERS = ["Status", "Name", "Type", "Options", "Used by"];
  function weightedText(w) { return "weighted: " + w.services.map(function (x) { return x.name + " (" + x.weight + ")"; }).join(", "); }
  function tcpServiceRow(s) {
    var servers = ((s.loadBalancer || {}).servers || []).map(function (x) {
      return h("li", { "data-server": x.address }, h("code", { text: x.address }), x.tls ? " (tls)" : "");
    });
    var detail = servers.length ? h("ul", { cls: "plain" }, servers)
      : s.weighted ? h("span", { text: weightedText(s.weighted) })
      : h("span", { cls: "muted", text: s.type });
    return h("tr", { "data-tcp-service": s.name }, td(statusBadge(s.status)), td(h("strong", { text: s.name }), errors(s.error)), td(s.type), td(detail), td((s.usedBy || []).join(", ")));
  }

  var views = {
    overview: {
      load: function () { return Promise.all([getJson("overview"), getJson("entrypoints"), getJson("portico/overview")]); },
      render: function (d) {
        var o = d[0], eps = d[1] || [], p = d[2] || {};
        var last = (p && p.lastReload) || o.lastReload;
        var reload = last
          ? h("div", null, last.success ? badge("success", "ok") : badge("rejected", "err"), " ", h("span", { text: when(last.time) }),
              last.error ? h("pre", { cls: "error-text", "data-test": "reload-error", text: last.error }) : null)
          : h("span", { cls: "muted", text: "no reload yet" });
        var provs = (p.providerConnections || []).map(function (c) {
          return h("tr", null, td(c.provider), td(statusBadge(c.state)), td(when(c.since)), td(c.lastError ? h("pre", { cls: "error-text", text: c.lastError }) : ""));
        });
        return h("div", { "data-view": "overview" },
          h("div", { cls: "cards" },
            h("div", { cls: "card" }, h("h3", { text: "HTTP routers" }), counts(o.http.routers)),
            h("div", { cls: "card" }, h("h3", { text: "HTTP services" }), counts(o.http.services)),
            h("div", { cls: "card" }, h("h3", { text: "HTTP middlewares" }), counts(o.http.middlewares)),
            h("div", { cls: "card" }, h("h3", { text: "Last reload" }), reload,
              p.reloadCounts ? h("div", { cls: "muted", text: p.reloadCounts.success + " accepted, " + p.reloadCounts.failure + " rejected" }) : null)),
          h("h2", { text: "TCP" }),
          countCards("TCP", o.tcp, "tcp-counts"),
          h("h2", { text: "Entrypoints" }),
          table(["Name", "Address"], eps.map(function (e) { return h("tr", null, td(e.name), td(h("code", { text: e.address }))); })),
          h("h2", { text: "Providers" }),
          provs.length ? table(["Provider", "Connection", "Since", "Last error"], provs) : h("div", { cls: "empty", text: "no providers" }),
          h("h2", { text: "Features" }),
          h("div", { cls: "muted", text: "metrics: " + (o.features.metrics || "off") + " · access log: " + (o.features.accessLog ? "on" : "off") + " · version " + (p.version || "") }));
      },
    },
    routers: {
      searchable: true,
      load: function () { return getJson("http/routers?per_page=10000"); },
      render: function (list, q) {
        var rows = (list || []).filter(function (r) { return matches(r, q); }).map(function (r) {
          return routerRow(r, "data-router", r.tls ? JSON.stringify(r.tls) : "");
        });
        return h("div", { "data-view": "routers" },
          rows.length ? table(ROUTER_HEADERS, rows) : h("div", { cls: "empty", text: "no routers match" }));
      },
    },
    services: {
      searchable: true,
      load: function () { return getJson("http/services?per_page=10000"); },
      render: function (list, q) {
        var rows = (list || []).filter(function (s) { return matches(s, q); }).map(function (s) {
          var lb = s.loadBalancer || {};
          var status = s.serverStatus || {};
          var servers = (lb.servers || []).map(function (x) {
            var health = status[x.url] || (s.status === "enabled" ? "UP" : "DOWN");
            return h("li", { "data-server": x.url }, statusBadge(health), " ", h("code", { text: x.url }));
          });
          var detail = servers.length ? h("ul", { cls: "plain" }, servers)
            : s.weighted ? h("span", { text: weightedText(s.weighted) })
            : s.failover ? h("span", { text: "failover: " + s.failover.service + " → " + s.failover.fallback })
            : s.mirroring ? h("span", { text: "mirroring: " + s.mirroring.service })
            : h("span", { cls: "muted", text: s.type });
          return h("tr", { "data-service": s.name }, td(statusBadge(s.status)), td(h("strong", { text: s.name }), errors(s.error)), td(s.type), td(detail), td((s.usedBy || []).join(", ")));
        });
        return h("div", { "data-view": "services" },
          rows.length ? table(["Status", "Name", "Type", "Servers", "Used by"], rows) : h("div", { cls: "empty", text: "no services match" }));
      },
    },
    middlewares: {
      searchable: true,
      load: function () { return getJson("http/middlewares?per_page=10000"); },
      render: function (list, q) {
        var rows = (list || []).filter(function (m) { return matches(m, q); }).map(function (m) { return middlewareRow(m, "data-middleware"); });
        return h("div", { "data-view": "middlewares" },
          rows.length ? table(MIDDLEWARE_HEADERS, rows) : h("div", { cls: "empty", text: "no middlewares" }));
      },
    },
    tcp: {
      searchable: true,
      load: function () {
        return Promise.all([getJson("overview"), getJson("tcp/routers?per_page=10000"), getJson("tcp/services?per_page=10000"), getJson("tcp/middlewares?per_page=10000")]);
      },
      render: function (d, q) {
        var o = d[0] || {};
        var keep = function (x) { return matches(x, q); };
        var routers = (d[1] || []).filter(keep).map(function (r) { return routerRow(r, "data-tcp-router", tcpTls(r.tls)); });
        var services = (d[2] || []).filter(keep).map(tcpServiceRow);
        var mws = (d[3] || []).filter(keep).map(function (m) { return middlewareRow(m, "data-tcp-middleware"); });
        return h("div", { "data-view": "tcp" },
          countCards("TCP", o.tcp, "tcp-counts"),
          h("h2", { text: "TCP routers" }),
          routers.length ? table(ROUTER_HEADERS, routers, { "data-test": "tcp-routers" }) : h("div", { cls: "empty", text: "no TCP routers match" }),
          h("h2", { text: "TCP services" }),
          services.length ? table(["Status", "Name", "Type", "Servers", "Used by"], services, { "data-test": "tcp-services" }) : h("div", { cls: "empty", text: "no TCP services match" }),
          h("h2", { text: "TCP middlewares" }),
          mws.length ? table(MIDDLEWARE_HEADERS, mws, { "data-test": "tcp-middlewares" }) : h("div", { cls: "empty", text: "no TCP middlewares match" }));
      },
    },
    cluster: {
      load: function () { return getJson("portico/cluster"); },
      render: function (c) {
        if (!c || !c.enabled) {
          return h("div", { "data-view": "cluster" },
            h("div", { cls: "empty", "data-test": "no-cluster" }, "No cluster: this instance runs standalone and is its own manager."),
            h("div", { cls: "cards" },
              h("div", { cls: "card" }, h("h3", { text: "This node" }), h("div", { cls: "big", "data-test": "node-id", text: (c && c.id) || "standalone" })),
              h("div", { cls: "card" }, h("h3", { text: "Role" }), h("div", { cls: "big", "data-test": "role", text: "manager" }))));
        }
        var mgr = c.manager ? (c.manager.nodeId || "?") + " (" + c.manager.address + ", term " + c.manager.term + ")" : "none (election in progress)";
        var peers = c.peers.map(function (p) { return h("tr", null, td(h("code", { text: p.address })), td(p.reachable ? badge("reachable", "ok") : badge("unreachable", "err")), td(when(p.lastContact))); });
        var changes = (c.roleChanges || []).slice().reverse().map(function (r) { return h("tr", null, td(when(r.time)), td((r.from || "start") + " → " + r.to + (r.reason ? " (" + r.reason + ")" : "")), td(String(r.term))); });
        return h("div", { "data-view": "cluster" },
          h("div", { cls: "cards" },
            h("div", { cls: "card" }, h("h3", { text: "This node" }), h("div", { cls: "big", "data-test": "node-id", text: c.id || "" }), h("div", { cls: "muted", text: c.address || "" })),
            h("div", { cls: "card" }, h("h3", { text: "Role" }), h("div", { cls: "big", "data-test": "role", text: c.role })),
            h("div", { cls: "card" }, h("h3", { text: "Term" }), h("div", { cls: "big", text: String(c.term) })),
            h("div", { cls: "card" }, h("h3", { text: "Manager" }), h("div", { "data-test": "manager", text: mgr }))),
          h("h2", { text: "Peers" }),
          peers.length ? table(["Peer", "State", "Last contact"], peers) : h("div", { cls: "empty", text: "no peers" }),
          h("h2", { text: "Recent role changes" }),
          changes.length ? table(["When", "Change", "Term"], changes) : h("div", { cls: "empty", text: "none seen" }));
      },
    },
    certificates: {
      searchable: true,
      load: function () { return getJson("portico/certificates"); },
      render: function (v, q) {
        if (!v || !v.enabled) return h("div", { "data-view": "certificates" }, h("div", { cls: "empty", text: "No certificate store: TLS and ACME are not configured on this instance." }));
        var rows = v.certificates.filter(function (c) { return matches(c, q); }).map(function (c) {
          var days = c.daysLeft === null ? "" : String(c.daysLeft);
          var kind = c.daysLeft === null ? "muted" : c.daysLeft < 7 ? "err" : c.daysLeft < 30 ? "warn" : "ok";
          return h("tr", null, td(c.domains.join(", ")), td(c.issuer || ""), td(c.notAfter || ""), td(badge(days, kind)), td(c.renewal || ""), td(c.resolver || ""), td(c.lastError ? h("pre", { cls: "error-text", text: c.lastError }) : ""));
        });
        return h("div", { "data-view": "certificates" },
          rows.length ? table(["Domains", "Issuer", "Not after", "Days left", "Renewal", "Resolver", "Error"], rows) : h("div", { cls: "empty", text: "no certificates" }));
      },
    },
  };

  function current() { var name = (location.hash.replace(/^#\/?/, "") || "overview").split("?")[0]; return views[name] ? name : "overview"; }
  var lastData = null;
  function draw(name) {
    if (lastData === null) return;
    var q = views[name].searchable ? search.value.trim().toLowerCase() : "";
    var node = views[name].render(lastData, q);
    view.replaceChildren(node);
  }
  function refresh() {
    var name = current();
    var mine = generation;
    return views[name].load().then(function (data) {
      if (mine !== generation) return;
      lastData = data;
      banner.classList.add("hidden");
      draw(name);
      updated.textContent = "updated " + new Date().toLocaleTimeString();
      document.body.setAttribute("data-loaded", name);
    }).catch(function (err) {
      banner.textContent = "Cannot reach the API: " + err.message;
      banner.classList.remove("hidden");
    });
  }
  function show() {
    generation++;
    lastData = null;
    var name = current();
    document.body.removeAttribute("data-loaded");
    document.querySelectorAll("[data-nav]").forEach(function (a) { a.classList.toggle("active", a.getAttribute("data-nav") === name); });
    toolbar.classList.toggle("hidden", !views[name].searchable);
    view.replaceChildren(h("div", { cls: "muted", text: "loading…" }));
    refresh();
  }
  search.addEventListener("input", function () { draw(current()); });
  window.addEventListener("hashchange", show);
  show();
  timer = setInterval(function () { if (!document.hidden) refresh(); }, POLL_MS);
})();
`;
