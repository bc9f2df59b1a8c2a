// The dashboard page (docs/reference.md, "web"). No framework, no build step.
//
// Everything an agent or the fleet supplies (names, screens, event fields, evidence) is
// put into the page as text (textContent), never as markup. The one exception, the
// screen's colours, arrives as HTML that the server already escaped; it is parsed into an
// inert document and rebuilt here from its text and its span classes alone, so even a
// server bug could not put an element of an agent's choosing into the page.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const MAX_EVENTS = 500;
  const CLASS_OK = /^(?:[fb](?:\d|[1-9]\d|1\d\d|2[0-4]\d|25[0-5])|fx|bx|fr|br|bo|dm|it|un|st|ov|hd)$/;
  const HEX = /^[0-9a-f]{6}$/;
  const ACTIVITY = {
    idle: "idle",
    busy: "⟳ busy",
    awaiting_approval: "⚠ awaiting approval",
    unknown: "unknown",
  };
  const STATE = {
    running: "● running",
    starting: "◐ starting",
    stopped: "○ stopped",
    failed: "✖ failed",
    unknown: "? unknown",
  };

  const st = {
    doc: null,
    docAt: 0,
    selected: null,
    events: [],
    lastSeq: null, // this machine's newest event seq (see cursor())
    hostSeq: {}, // another machine's name -> its newest event seq shown
    source: null,
    queueAvailable: false,
    busy: new Set(), // agents with an action under way from this page
  };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.floor(seconds);
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  }

  function uptime(row) {
    if (row.uptime_s === null || row.uptime_s === undefined) return null;
    return row.uptime_s + (Date.now() - st.docAt) / 1000;
  }

  function attention(row) {
    return row.state === "failed" || row.activity === "awaiting_approval" || row.drift === true;
  }

  function stateBadge(row) {
    const b = el("span", `badge state-${row.state}`, STATE[row.state] || row.state);
    if (row.reason) b.title = row.reason; // e.g. why its host could not say
    return b;
  }

  function activityBadge(row) {
    const running = row.state === "running";
    const a = running ? row.activity : "none";
    return el("span", `badge act-${a}`, running ? (ACTIVITY[row.activity] || row.activity) : "–");
  }

  function showProblem(text) {
    const p = $("problem");
    p.textContent = text || "";
    p.hidden = !text;
  }

  // --- the fleet list ---------------------------------------------------------------------

  function rows() {
    return (st.doc && Array.isArray(st.doc.agents)) ? st.doc.agents : [];
  }

  function row(name) {
    return rows().find((r) => r.name === name) || null;
  }

  function renderFleet() {
    const doc = st.doc;
    if (!doc) return;
    const watcher = doc.watcher && doc.watcher.state === "running" ? "watcher running" : "watcher stopped";
    $("fleet-summary").textContent =
      `${doc.supervisor} supervisor · holder ${doc.holder} · ${watcher}`;
    const all = rows();
    const count = (cls, label, f) => {
      const n = all.filter(f).length;
      return el("span", n ? `count ${cls}` : "count", `${n} ${label}`);
    };
    $("counts").replaceChildren(
      el("span", "count", `${all.length} agents`),
      count("state-running", "running", (r) => r.state === "running"),
      count("act-busy", "busy", (r) => r.state === "running" && r.activity === "busy"),
      count("act-awaiting_approval", "awaiting approval",
        (r) => r.state === "running" && r.activity === "awaiting_approval"),
      count("state-failed", "failed", (r) => r.state === "failed"),
    );
    renderHosts(doc);
    const filter = $("filter").value.trim().toLowerCase();
    const onlyAttention = $("attention").checked;
    const body = $("agent-rows");
    const out = [];
    for (const r of all) {
      const hay = `${r.name} ${r.runtime} ${r.host || ""} ${r.state} ${r.activity}`.toLowerCase();
      if (filter && !hay.includes(filter)) continue;
      if (onlyAttention && !attention(r)) continue;
      const tr = el("tr", "agent-row");
      tr.dataset.agent = r.name;
      if (r.name === st.selected) tr.classList.add("selected");
      if (attention(r)) tr.classList.add("attention");
      const name = el("button", "name", r.name);
      name.type = "button";
      name.dataset.agent = r.name;
      const nameCell = el("td", "c-name");
      nameCell.append(name);
      if (r.drift) nameCell.append(el("span", "badge drift", "drift"));
      const up = el("td", "c-uptime", duration(uptime(r)));
      up.dataset.uptime = r.name;
      tr.append(
        nameCell,
        el("td", "c-host", r.host || "local"),
        el("td", "c-runtime", r.runtime),
        cell("c-state", stateBadge(r)),
        cell("c-activity", activityBadge(r)),
        up,
        el("td", "c-restarts", r.restarts ?? "–"),
      );
      out.push(tr);
    }
    body.replaceChildren(...out);
    $("empty").hidden = out.length > 0;
    // The host column only once some agent runs elsewhere.
    $("agents").classList.toggle("no-hosts", !all.some((r) => r.host));
  }

  // Every other machine, when the roster has some: a host that cannot be reached is named
  // with the reason (its agents show state "unknown").
  function renderHosts(doc) {
    const hosts = Array.isArray(doc.hosts) ? doc.hosts.filter((h) => h.name !== "local") : [];
    const out = hosts.map((h) => {
      const down = h.reachable === false || Boolean(h.error);
      // The reason already says "unreachable: ..." when the host could not be reached.
      const why = h.error || (h.reachable === false ? "unreachable" : "");
      const item = el("li", down ? "host down" : "host up", down ? `✖ ${h.name}: ${why}` : `● ${h.name}`);
      item.dataset.host = h.name;
      return item;
    });
    $("hosts").replaceChildren(...out);
    $("hosts").hidden = out.length === 0;
  }

  function cell(cls, child) {
    const td = el("td", cls);
    td.append(child);
    return td;
  }

  function tickUptimes() {
    for (const td of document.querySelectorAll("td[data-uptime]")) {
      const r = row(td.dataset.uptime);
      if (r) td.textContent = duration(uptime(r));
    }
  }

  // --- the selected agent -----------------------------------------------------------------

  function renderAgent() {
    const name = st.selected;
    document.body.classList.toggle("detail-open", name !== null);
    $("none").hidden = name !== null;
    $("agent").hidden = name === null;
    if (name === null) return;
    const r = row(name);
    $("agent-name").textContent = name;
    const hostEl = $("agent-host");
    hostEl.hidden = !(r && r.host);
    hostEl.textContent = r && r.host ? `on ${r.host}` : "";
    const stateEl = $("agent-state");
    const actEl = $("agent-activity");
    if (!r) {
      stateEl.className = "badge";
      stateEl.textContent = "not in the roster";
      actEl.textContent = "";
      return;
    }
    const sb = stateBadge(r);
    stateEl.className = sb.className;
    stateEl.textContent = sb.textContent;
    const ab = activityBadge(r);
    actEl.className = ab.className;
    actEl.textContent = ab.textContent;
    const drift = $("agent-drift");
    drift.hidden = !r.drift;
    drift.title = r.drift_reason || "";
    const working = st.busy.has(name);
    const live = r.state === "running" || r.state === "starting";
    for (const b of document.querySelectorAll(".actions button")) {
      const a = b.dataset.action;
      b.disabled = working || (a === "start" ? live : !live && a === "stop");
    }
    const waiting = r.state === "running" && r.activity === "awaiting_approval";
    $("approval").hidden = !waiting;
    for (const b of document.querySelectorAll(".approval button")) b.disabled = working;
  }

  function select(name) {
    if (name === st.selected) return;
    st.selected = name;
    $("screen").replaceChildren();
    $("screen").classList.remove("dead");
    delete $("screen").dataset.at;
    $("send-result").textContent = "";
    $("send-result").className = "result";
    $("action-result").textContent = "";
    $("action-result").className = "result";
    const hash = name ? `#${encodeURIComponent(name)}` : "";
    if (location.hash !== hash) history.replaceState(null, "", hash || location.pathname);
    renderFleet();
    renderAgent();
    renderEvents();
    connect();
    if (name && window.matchMedia("(max-width: 760px)").matches) window.scrollTo(0, 0);
  }

  // The screen: the server's escaped HTML, parsed inert and rebuilt from text and known
  // classes only.
  function screenNodes(html) {
    const parsed = new DOMParser().parseFromString(`<div>${html}</div>`, "text/html");
    const root = parsed.body.firstElementChild;
    const frag = document.createDocumentFragment();
    if (!root) return frag;
    for (const node of root.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) {
        frag.append(document.createTextNode(node.data));
      } else if (node.nodeType === Node.ELEMENT_NODE) {
        const span = document.createElement("span");
        for (const c of (node.getAttribute("class") || "").split(/\s+/)) {
          if (CLASS_OK.test(c)) span.classList.add(c);
        }
        const fg = node.getAttribute("data-fg");
        const bg = node.getAttribute("data-bg");
        if (fg && HEX.test(fg)) span.style.color = `#${fg}`;
        if (bg && HEX.test(bg)) span.style.backgroundColor = `#${bg}`;
        span.textContent = node.textContent;
        frag.append(span);
      }
    }
    return frag;
  }

  function renderScreen(doc) {
    if (doc.agent !== st.selected) return;
    const pre = $("screen");
    pre.classList.toggle("dead", Boolean(doc.dead));
    if (doc.error) {
      // Its host could not show it (e.g. unreachable): say why, as text.
      pre.replaceChildren(document.createTextNode(`(no screen: ${doc.error})`));
      return;
    }
    if (doc.running === false && !doc.html) {
      pre.replaceChildren(document.createTextNode("(no screen: the agent is not running)"));
      return;
    }
    // The bottom of a screen is where an agent works: stay there unless scrolled away.
    const follow = !pre.dataset.at || pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.replaceChildren(screenNodes(doc.html || ""));
    pre.dataset.at = String(Date.now());
    if (follow) pre.scrollTop = pre.scrollHeight;
  }

  // --- events -----------------------------------------------------------------------------

  function addEvents(list) {
    for (const e of list) {
      // An event is (host, seq): each machine has its own log.
      const host = e.host || "local";
      if (host === "local") {
        if (st.lastSeq !== null && e.seq <= st.lastSeq) continue;
        st.lastSeq = e.seq;
      } else {
        if (st.hostSeq[host] !== undefined && e.seq <= st.hostSeq[host]) continue;
        st.hostSeq[host] = e.seq;
      }
      st.events.push(e);
    }
    if (st.events.length > MAX_EVENTS) st.events.splice(0, st.events.length - MAX_EVENTS);
  }

  function fieldsText(e) {
    const parts = [];
    for (const [k, v] of Object.entries(e)) {
      if (k === "seq" || k === "ts" || k === "agent" || k === "type" || k === "host") continue;
      if (Array.isArray(v)) parts.push(`${k}: ${v.join(" / ")}`);
      else if (v !== null && typeof v === "object") parts.push(`${k}=${JSON.stringify(v)}`);
      else parts.push(`${k}=${v}`);
    }
    return parts.join("  ");
  }

  function eventItem(e, withAgent) {
    const li = el("li", `event ev-${e.type}`);
    const time = new Date(e.ts);
    const t = el("time", "ev-time", Number.isNaN(time.getTime()) ? e.ts : time.toLocaleTimeString());
    t.dateTime = e.ts;
    li.append(t);
    if (e.host) li.append(el("span", "ev-host", e.host));
    if (withAgent) li.append(el("span", "ev-agent", e.agent || "fleet"));
    li.append(el("span", "ev-type", e.type.replaceAll("_", " ")));
    const f = fieldsText(e);
    if (f) li.append(el("span", "ev-fields", f));
    return li;
  }

  function renderEvents() {
    const name = st.selected;
    const list = name === null ? st.events : st.events.filter((e) => e.agent === name);
    const shown = list.slice(-50).reverse();
    const target = name === null ? $("fleet-events") : $("events");
    target.replaceChildren(...shown.map((e) => eventItem(e, name === null)));
    if (shown.length === 0) target.replaceChildren(el("li", "event none", "no events yet"));
  }

  // --- talking to the server --------------------------------------------------------------

  async function request(method, path, body) {
    const opts = { method, credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (err) {
      return { status: 0, doc: { error: `the dashboard did not answer (${err})` } };
    }
    if (resp.status === 401) unauthorized();
    const text = await resp.text();
    let doc = null;
    try {
      doc = JSON.parse(text);
    } catch (_) {
      doc = { error: text.trim() || `HTTP ${resp.status}` };
    }
    return { status: resp.status, doc };
  }

  function unauthorized() {
    showProblem("Not signed in: open the URL that `mosaic fleet web` printed (it carries the token).");
  }

  function agentPath(name, what) {
    return `/api/agents/${encodeURIComponent(name)}/${what}`;
  }

  async function act(action) {
    const name = st.selected;
    if (!name || st.busy.has(name)) return;
    const out = $("action-result");
    st.busy.add(name);
    renderAgent();
    out.className = "result pending";
    out.textContent = `${action}…`;
    const { status, doc } = await request("POST", agentPath(name, action));
    st.busy.delete(name);
    if (status === 200 && doc && Array.isArray(doc.lines)) {
      out.className = "result good";
      out.textContent = doc.lines.join("\n") || `${action}: done`;
    } else if (status === 200 && doc && doc.outcome) {
      out.className = doc.ok ? "result good" : "result bad";
      const lines = [`${doc.outcome} (${(doc.keys || []).join(" ") || "nothing typed"}, ${doc.seconds}s)`];
      if (!doc.ok) lines.push(...(doc.evidence || []).map((l) => `| ${l}`));
      out.textContent = lines.join("\n");
    } else {
      out.className = "result bad";
      out.textContent = (doc && doc.error) || `${action} failed (HTTP ${status})`;
    }
    if (st.selected === name) renderAgent();
  }

  async function send(ev) {
    ev.preventDefault();
    const name = st.selected;
    const box = $("message");
    const message = box.value;
    const out = $("send-result");
    if (!name) return;
    if (!message.trim()) {
      out.className = "result bad";
      out.textContent = "the message is empty";
      return;
    }
    const queue = $("queue").checked;
    const button = $("send-button");
    button.disabled = true;
    out.className = "result pending";
    out.textContent = queue ? "queueing…" : "sending…";
    const { status, doc } = await request("POST", agentPath(name, "send"), { message, queue });
    button.disabled = false;
    if (status !== 200 || !doc || !Array.isArray(doc.results)) {
      out.className = "result bad";
      out.textContent = (doc && doc.error) || `send failed (HTTP ${status})`;
      return;
    }
    const r = doc.results[0] || {};
    const good = r.accepted === true || r.outcome === "queued";
    out.className = good ? "result good" : (r.outcome === "not_running" ? "result bad" : "result warn");
    const lines = [`${(r.outcome || "?").replaceAll("_", " ")}` +
      (r.attempts !== undefined ? ` (${r.attempts} attempt${r.attempts === 1 ? "" : "s"}, ${r.seconds}s)` : "") +
      (r.id !== undefined ? ` id ${r.id}` : "")];
    if (!good) lines.push(...(r.evidence || []).map((l) => `| ${l}`));
    out.textContent = lines.join("\n");
    if (good && box.value === message) box.value = "";
  }

  // Where the page is in every machine's log, as the stream's ids say it: `12` (this
  // machine's seq), or `local:12,gpu1:3` once another machine's events came.
  function cursor() {
    const hosts = Object.entries(st.hostSeq);
    if (hosts.length === 0) return String(st.lastSeq);
    return [["local", st.lastSeq], ...hosts].map(([h, s]) => `${h}:${s}`).join(",");
  }

  function takeCursor(text) {
    st.lastSeq = 0;
    for (const item of String(text || "").split(",")) {
      const [host, seq] = item.includes(":") ? item.split(":") : ["local", item];
      const n = Number(seq);
      if (!Number.isInteger(n) || n < 0) continue;
      if (host === "local") st.lastSeq = n;
      else if (st.hostSeq[host] === undefined) st.hostSeq[host] = n;
    }
  }

  function connect() {
    if (st.source) st.source.close();
    const params = new URLSearchParams();
    if (st.selected) params.set("screen", st.selected);
    if (st.lastSeq !== null) params.set("since", cursor());
    const q = params.toString();
    const source = new EventSource(`/api/events/stream${q ? `?${q}` : ""}`);
    st.source = source;
    const conn = $("conn");
    source.addEventListener("open", () => {
      conn.className = "conn up";
      conn.textContent = "live";
    });
    source.addEventListener("error", () => {
      if (st.source !== source) return;
      conn.className = "conn down";
      if (source.readyState === EventSource.CLOSED) {
        conn.textContent = "disconnected";
        // A refused stream does not retry itself: 401 (a new token) is for the person;
        // 404 is an agent that left the roster (or a mistyped #NAME): show the fleet.
        request("GET", "/api/status").then(({ status, doc }) => {
          if (status === 401 || st.source !== source) return;
          if (status === 200 && doc && Array.isArray(doc.agents)) {
            st.doc = doc;
            st.docAt = Date.now();
            renderFleet();
            if (st.selected !== null && !row(st.selected)) {
              select(null);
              return;
            }
          }
          setTimeout(() => {
            if (st.source === source) connect();
          }, 2000);
        });
      } else {
        conn.textContent = "reconnecting…";
      }
    });
    source.addEventListener("hello", (m) => {
      const hello = JSON.parse(m.data);
      st.queueAvailable = Boolean(hello.queue);
      const q = $("queue");
      q.disabled = !st.queueAvailable;
      if (!st.queueAvailable) q.checked = false;
      $("queue-label").title = st.queueAvailable ? "" : "this mosaic has no outbox yet";
      if (st.lastSeq === null) takeCursor(m.lastEventId);
    });
    source.addEventListener("status", (m) => {
      st.doc = JSON.parse(m.data);
      st.docAt = Date.now();
      showProblem("");
      renderFleet();
      renderAgent();
    });
    source.addEventListener("event", (m) => {
      addEvents([JSON.parse(m.data)]);
      renderEvents();
    });
    source.addEventListener("screen", (m) => renderScreen(JSON.parse(m.data)));
    source.addEventListener("problem", (m) => showProblem(JSON.parse(m.data).error));
  }

  async function start() {
    await loadEvents();
    $("filter").addEventListener("input", renderFleet);
    $("attention").addEventListener("change", renderFleet);
    $("agent-rows").addEventListener("click", (ev) => {
      const tr = ev.target.closest("tr[data-agent]");
      if (tr) select(tr.dataset.agent);
    });
    $("back").addEventListener("click", () => select(null));
    for (const b of document.querySelectorAll("button[data-action]")) {
      b.addEventListener("click", () => act(b.dataset.action));
    }
    $("send-form").addEventListener("submit", send);
    $("message").addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        $("send-form").requestSubmit();
      }
    });
    window.addEventListener("hashchange", () => select(fromHash()));
    setInterval(tickUptimes, 1000);
    const initial = fromHash();
    st.selected = initial;
    renderAgent();
    renderEvents();
    connect();
  }

  async function loadEvents() {
    let resp;
    try {
      resp = await fetch("/api/events?last=200", { credentials: "same-origin" });
    } catch (_) {
      return;
    }
    if (resp.status === 401) {
      unauthorized();
      return;
    }
    if (!resp.ok) return;
    // JSON Lines, as `events --json` prints them.
    const lines = (await resp.text()).split("\n").filter((l) => l.trim());
    addEvents(lines.map((l) => JSON.parse(l)));
    if (st.lastSeq === null) st.lastSeq = 0; // the stream replays whatever comes meanwhile
  }

  function fromHash() {
    try {
      return decodeURIComponent(location.hash.slice(1)) || null;
    } catch (_) {
      return null; // a malformed escape
    }
  }

  start();
})();
