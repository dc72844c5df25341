// The wasmfarm monitor dashboard: polls status (the JSON next to this
// page) every second, keeps the last five minutes in memory, and draws
// tables and charts. No library, nothing loaded from elsewhere.
"use strict";

(function () {
  const POLL_MS = 1000;
  const WINDOW_MS = 5 * 60 * 1000; // what the charts show and history keeps
  const MIN_SPAN_MS = 60 * 1000; // the shortest time axis
  const FETCH_TIMEOUT_MS = 5000;
  const SVG = "http://www.w3.org/2000/svg";

  // samples: {t: ms, txMsgs, rxMsgs, txBytes, rxBytes} in time order.
  let samples = [];
  let source = ""; // where the traffic counters come from
  let startedAt = ""; // a new value means the node restarted
  const sessionHistory = new Map(); // app path -> [{t, n}]
  let lastOK = 0; // client time of the last good poll
  let lastStatus = null;

  const $ = (id) => document.getElementById(id);
  const nf = new Intl.NumberFormat("en-US");
  const nf1 = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  function svgEl(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  function num(v) { return typeof v === "number" && isFinite(v) ? v : 0; }
  function count(v) { return nf.format(num(v)); }
  function bytes(v) {
    v = num(v);
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 && Math.abs(v) >= 10 ? nf.format(Math.round(v)) : nf1.format(v)) + " " + units[i];
  }
  function rate(v, unit) {
    v = num(v);
    if (unit === "B") return bytes(v) + "/s";
    if (v >= 100) return nf.format(Math.round(v)) + "/s";
    return nf1.format(v) + "/s";
  }
  function seconds(nanos) {
    const s = num(nanos) / 1e9;
    if (s < 1) return nf.format(Math.round(s * 1000)) + " ms";
    return nf1.format(s) + " s";
  }
  function duration(ms) {
    let s = Math.max(0, Math.floor(ms / 1000));
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + m + "m";
    if (m > 0) return m + "m " + s + "s";
    return s + "s";
  }
  function ago(ms) {
    const s = Math.round(ms / 1000);
    if (s < 60) return "−" + s + " s";
    return "−" + nf1.format(s / 60) + " min";
  }
  function clock(t) {
    const d = new Date(t);
    return isNaN(d) ? "" : d.toLocaleTimeString("en-GB", { hour12: false });
  }
  function validTime(s) {
    if (!s || s.startsWith("0001-")) return 0; // Go's zero time
    const t = Date.parse(s);
    return isNaN(t) ? 0 : t;
  }

  // ---- traffic ----

  // traffic picks the counters the charts follow: the channel's
  // Throughput interceptor if it has one, else the session managers'
  // replication counts summed over the apps.
  function traffic(st) {
    const ch = st.channel;
    if (ch && ch.throughput) {
      return { source: "channel (Throughput interceptor)", txMsgs: num(ch.txMessages), rxMsgs: num(ch.rxMessages), txBytes: num(ch.txBytes), rxBytes: num(ch.rxBytes) };
    }
    const out = { source: "session replication, all apps", txMsgs: 0, rxMsgs: 0, txBytes: 0, rxBytes: 0 };
    let managers = 0;
    for (const a of st.apps || []) {
      const m = a.manager;
      if (!m) continue;
      managers++;
      out.txMsgs += num(m.replicated); out.rxMsgs += num(m.received);
      out.txBytes += num(m.replicatedBytes); out.rxBytes += num(m.receivedBytes);
    }
    if (managers === 0) out.source = st.cluster ? "no replicated app" : "standalone node: no cluster traffic";
    return out;
  }

  function record(st, t) {
    const tr = traffic(st);
    const started = (st.node && st.node.startedAt) || "";
    if (tr.source !== source || started !== startedAt) {
      samples = []; // a different counter, or a restarted node: old deltas mean nothing
      source = tr.source;
      startedAt = started;
    }
    const prev = samples[samples.length - 1];
    if (prev && t <= prev.t) return; // the same snapshot twice
    samples.push({ t, txMsgs: tr.txMsgs, rxMsgs: tr.rxMsgs, txBytes: tr.txBytes, rxBytes: tr.rxBytes });
    while (samples.length > 2 && samples[0].t < t - WINDOW_MS - POLL_MS) samples.shift();

    const seen = new Set();
    for (const a of st.apps || []) {
      seen.add(a.path);
      let h = sessionHistory.get(a.path);
      if (!h) { h = []; sessionHistory.set(a.path, h); }
      h.push({ t, n: num(a.activeSessions) });
      while (h.length > 2 && h[0].t < t - WINDOW_MS) h.shift();
    }
    for (const p of sessionHistory.keys()) if (!seen.has(p)) sessionHistory.delete(p);
  }

  // rates turns consecutive samples into per-second rates; a counter
  // that went down (reset) gives no point.
  function rates(field) {
    const out = [];
    for (let i = 1; i < samples.length; i++) {
      const a = samples[i - 1], b = samples[i];
      const dt = (b.t - a.t) / 1000;
      const d = b[field] - a[field];
      if (dt <= 0 || d < 0) continue;
      out.push({ t: b.t, v: d / dt });
    }
    return out;
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  function drawChart(id, sentField, recvField, unit) {
    const fig = $(id);
    const plot = fig.querySelector(".plot");
    const sent = rates(sentField), recv = rates(recvField);
    const W = Math.max(plot.clientWidth || 0, 300), H = 170;
    const padL = 64, padR = 8, padT = 8, padB = 20;
    const pw = W - padL - padR, ph = H - padT - padB;
    const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": fig.querySelector("figcaption span").textContent });

    // The axis spans the history kept, at least a minute, at most the
    // window, so a page just opened is not an empty five minutes.
    const tEnd = samples.length ? samples[samples.length - 1].t : Date.now();
    const span = Math.min(WINDOW_MS, Math.max(MIN_SPAN_MS, samples.length ? tEnd - samples[0].t : 0));
    const tStart = tEnd - span;
    let max = 0;
    for (const p of sent.concat(recv)) if (p.t >= tStart && p.v > max) max = p.v;
    max = niceMax(max);
    const x = (t) => padL + ((t - tStart) / span) * pw;
    const y = (v) => padT + ph - (v / max) * ph;

    for (const f of [0, 0.5, 1]) {
      const gy = y(max * f);
      svg.append(svgEl("line", { class: "grid", x1: padL, x2: W - padR, y1: gy, y2: gy }));
      const label = svgEl("text", { class: "axis", x: padL - 6, y: gy + 4, "text-anchor": "end" });
      label.textContent = rate(max * f, unit).replace("/s", "");
      svg.append(label);
    }
    for (const [t, text, anchor] of [[tStart, ago(span), "start"], [tStart + span / 2, ago(span / 2), "middle"], [tEnd, "now", "end"]]) {
      const label = svgEl("text", { class: "axis", x: x(t), y: H - 4, "text-anchor": anchor });
      label.textContent = text;
      svg.append(label);
    }

    const visible = (pts) => pts.filter((p) => p.t >= tStart);
    const line = (pts) => pts.map((p) => x(p.t).toFixed(1) + "," + y(p.v).toFixed(1)).join(" ");
    const vs = visible(sent), vr = visible(recv);
    if (vs.length >= 2) {
      const area = line(vs) + ` ${x(vs[vs.length - 1].t).toFixed(1)},${y(0)} ${x(vs[0].t).toFixed(1)},${y(0)}`;
      svg.append(svgEl("polygon", { class: "area sent", points: area }));
    }
    for (const [pts, cls] of [[vs, "sent"], [vr, "received"]]) {
      if (pts.length >= 1) svg.append(svgEl("polyline", { class: "line " + cls, points: line(pts), "data-points": pts.length }));
    }
    if (vs.length < 2 && vr.length < 2) {
      const w = svgEl("text", { class: "waiting", x: padL + pw / 2, y: padT + ph / 2, "text-anchor": "middle" });
      w.textContent = source.startsWith("standalone") ? "no cluster traffic" : "gathering data…";
      svg.append(w);
    }
    plot.replaceChildren(svg);
    fig.setAttribute("data-points", String(Math.max(vs.length, vr.length)));

    const last = (pts) => (pts.length ? pts[pts.length - 1].v : 0);
    $("legend-" + id.replace("chart-", "")).replaceChildren(
      el("span", { class: "key sent" }, "sent " + rate(last(vs), unit)),
      el("span", { class: "key received" }, "received " + rate(last(vr), unit)));
  }

  function sparkline(path) {
    const h = sessionHistory.get(path) || [];
    const W = 110, H = 22;
    const svg = svgEl("svg", { class: "spark", viewBox: `0 0 ${W} ${H}`, "data-points": h.length, "aria-hidden": "true" });
    if (h.length >= 2) {
      const tEnd = h[h.length - 1].t;
      const span = Math.min(WINDOW_MS, Math.max(MIN_SPAN_MS, tEnd - h[0].t));
      const tStart = tEnd - span;
      let max = 1;
      for (const p of h) if (p.n > max) max = p.n;
      const pts = h.map((p) => `${(((p.t - tStart) / span) * (W - 2) + 1).toFixed(1)},${(H - 2 - (p.n / max) * (H - 4)).toFixed(1)}`);
      svg.append(svgEl("polyline", { points: pts.join(" ") }));
    }
    return svg;
  }

  // ---- tables and cards ----

  function renderHeader(st, t) {
    const n = st.node || {};
    $("route").textContent = n.jvmRoute || "(no jvmRoute)";
    $("member").textContent = n.member || "standalone";
    const badge = $("ready");
    badge.className = "badge " + (n.ready ? "ready" : "not-ready");
    badge.textContent = n.ready ? "ready" : "not ready";
    $("updated").textContent = "updated " + clock(t);
    $("updated").setAttribute("data-time", new Date(t).toISOString());
  }

  function renderSummary(st, t) {
    const members = st.members || [], apps = st.apps || [];
    $("sum-members").textContent = String(members.length + 1);
    $("sum-members-sub").textContent = st.node && st.node.member ? "this one and " + members.length + " other" + (members.length === 1 ? "" : "s") : "standalone";
    $("sum-apps").textContent = String(apps.length);
    const replicated = apps.filter((a) => a.manager).length;
    $("sum-apps-sub").textContent = replicated + " replicated";
    let sessions = 0;
    for (const a of apps) sessions += num(a.activeSessions);
    $("sum-sessions").textContent = count(sessions);
    let created = 0;
    for (const a of apps) if (a.manager) created += num(a.manager.sessionsCreated);
    $("sum-sessions-sub").textContent = replicated ? count(created) + " created here" : "";
    const started = validTime(st.node && st.node.startedAt);
    $("sum-uptime").textContent = started ? duration(t - started) : "–";
    $("sum-started").textContent = started ? "since " + new Date(started).toLocaleString("en-GB", { hour12: false }) : "";
  }

  function stateTransfer(m) {
    if (!m) return "";
    if (m.stateComplete) return count(m.stateTransferred) + " sessions in " + seconds(m.stateTransferNanos);
    if (m.ready) return "timed out after " + seconds(m.stateTransferNanos);
    return "in progress";
  }

  function renderApps(st) {
    const apps = (st.apps || []).slice().sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const rows = apps.map((a) => {
      const m = a.manager;
      const digest = a.digest || "";
      return el("tr", { "data-app": a.path },
        el("td", { class: "mono" }, a.path || "/"),
        el("td", { class: "mono", title: digest }, digest ? digest.slice(0, 12) : "–"),
        el("td", {}, m ? m.kind + (m.ready ? "" : " (starting)") : el("span", { class: "muted" }, "local")),
        el("td", { class: "num sessions" }, count(a.activeSessions)),
        el("td", {}, sparkline(a.path)),
        el("td", { class: "num" }, m ? count(m.sessionsCreated) : "–"),
        el("td", { class: "num" }, m ? count(m.sessionsExpired) : "–"),
        el("td", { class: "num replicated", title: m ? bytes(m.replicatedBytes) : "" }, m ? count(m.replicated) + " · " + bytes(m.replicatedBytes) : "–"),
        el("td", { class: "num received", title: m ? bytes(m.receivedBytes) : "" }, m ? count(m.received) + " · " + bytes(m.receivedBytes) : "–"),
        el("td", { class: m && !m.stateComplete && m.ready ? "warn" : "" }, m ? stateTransfer(m) : "–"));
    });
    $("apps").querySelector("tbody").replaceChildren(...rows);
    $("apps-empty").hidden = apps.length > 0;
  }

  function renderMembers(st) {
    const n = st.node || {};
    const chips = (list) => (list && list.length ? list.map((p) => el("span", { class: "chip mono" }, p)) : [el("span", { class: "muted" }, "none")]);
    const self = el("tr", { class: "self", "data-route": n.jvmRoute || "" },
      el("td", {}, n.jvmRoute || "–", el("span", { class: "tag" }, "this member")),
      el("td", { class: "mono" }, n.member || "standalone"),
      el("td", {}, ...chips((st.apps || []).filter((a) => a.manager).map((a) => a.path))));
    const rows = (st.members || []).map((m) => el("tr", { "data-route": m.jvmRoute || "" },
      el("td", {}, m.jvmRoute || "–"),
      el("td", { class: "mono" }, m.name || ""),
      el("td", {}, ...chips(m.apps))));
    const tbody = $("members").querySelector("tbody");
    tbody.replaceChildren(self, ...rows);
    if (!rows.length) {
      tbody.append(el("tr", {}, el("td", { colspan: "3", class: "muted" },
        n.member ? "No other member seen yet." : "This node is not a cluster member.")));
    }
  }

  function part(title, pairs) {
    const dl = el("dl");
    for (const [k, v, cls] of pairs) dl.append(el("dt", {}, k), el("dd", cls ? { class: cls } : {}, v));
    return el("div", { class: "part" }, el("h3", {}, title), dl);
  }

  function renderParts(st) {
    const out = [];
    const v = st.replicationValve;
    if (v) {
      out.push(part("Replication valve", [
        ["requests", count(v.requests)],
        ["filtered", count(v.filtered)],
        ["replications", count(v.replications)],
        ["failures", count(v.failures), v.failures ? "bad" : ""],
        ["bytes", bytes(v.bytes)],
        ["time waited", seconds(v.timeNanos)],
        ["filter", v.filter || "none", "mono left"],
        ["jvmRoute rewrites", count(v.jvmRouteRewrites)],
      ]));
    }
    const c = st.cluster;
    if (c) {
      out.push(part("Cluster messages", [
        ["received", count(c.received)],
        ["bad", count(c.bad), c.bad ? "bad" : ""],
        ["ignored", count(c.ignored)],
        ["send errors", count(c.sendErrors), c.sendErrors ? "bad" : ""],
      ]));
    }
    const ch = st.channel;
    if (ch) {
      const list = el("ol");
      for (const name of ch.interceptors || []) list.append(el("li", { class: "mono" }, name));
      if (!(ch.interceptors || []).length) list.append(el("li", { class: "muted" }, "none"));
      const p = part("Channel", ch.throughput ? [
        ["sent", count(ch.txMessages) + " · " + bytes(ch.txBytes)],
        ["received", count(ch.rxMessages) + " · " + bytes(ch.rxBytes)],
      ] : [["traffic", "no Throughput interceptor"]]);
      p.append(el("h3", {}, "Interceptors, top first"), list);
      out.push(p);
    }
    const d = st.deployer;
    if (d) {
      out.push(part("Farm deployer", [
        ["deploys", count(d.deploys)],
        ["deploy failures", count(d.deployFailures), d.deployFailures ? "bad" : ""],
        ["undeploys", count(d.undeploys)],
        ["transfers in", count(d.transfersCompleted)],
        ["corrupt / expired", count(d.transfersCorrupt) + " / " + count(d.transfersExpired), d.transfersCorrupt ? "bad" : ""],
        ["bytes sent", bytes(d.bytesSent)],
        ["bytes received", bytes(d.bytesReceived)],
        ["refused messages", count(num(d.refused) + num(d.decodeErrors) + num(d.unauthenticated)), d.unauthenticated ? "bad" : ""],
      ]));
    }
    if (!out.length) out.push(el("p", { class: "muted" }, "A standalone node: no replication valve, cluster, channel or deployer."));
    $("parts").replaceChildren(...out);
  }

  function render(st, t) {
    renderHeader(st, t);
    renderSummary(st, t);
    $("traffic-source").textContent = "from " + source;
    drawChart("chart-messages", "txMsgs", "rxMsgs", "");
    drawChart("chart-bytes", "txBytes", "rxBytes", "B");
    renderApps(st);
    renderMembers(st);
    renderParts(st);
  }

  function offline(err) {
    const badge = $("ready");
    badge.className = "badge offline";
    badge.textContent = "no answer";
    badge.title = String(err);
    $("updated").textContent = lastOK ? "last update " + clock(lastOK) + ", " + duration(Date.now() - lastOK) + " ago" : "never reached the node";
  }

  async function poll() {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    try {
      const resp = await fetch("status", { cache: "no-store", signal: ctl.signal, headers: { Accept: "application/json" } });
      if (!resp.ok) throw new Error("status: HTTP " + resp.status);
      const st = await resp.json();
      // The node's clock times the samples, so the rates are right even
      // when the browser polls late (a background tab).
      const t = validTime(st.time) || Date.now();
      lastOK = Date.now();
      lastStatus = st;
      record(st, t);
      render(st, t);
    } catch (err) {
      offline(err);
    } finally {
      clearTimeout(timer);
      setTimeout(poll, POLL_MS);
    }
  }

  window.addEventListener("resize", () => {
    if (!lastStatus) return;
    drawChart("chart-messages", "txMsgs", "rxMsgs", "");
    drawChart("chart-bytes", "txBytes", "rxBytes", "B");
  });
  poll();
})();
