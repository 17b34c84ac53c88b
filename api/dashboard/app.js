// The staff dashboard: sign-in, the period picker, KPI tiles, charts, the map of open
// cases, the lists and the per-department table, and a case's details in a drawer. Every
// figure comes from the API as it is: the page computes nothing a test could not check
// against GET /v1/stats. An administrator also has the Administration view (admin.js).

import { get, session, signIn, signOut, Problem, SignedOut } from "./api.js";
import { rateChart, volumeChart } from "./charts.js";
import { CaseMap } from "./map.js";
import { reload as reloadAdmin, setup as setupAdmin } from "./admin.js";

const $ = (sel) => document.querySelector(sel);

// h builds an HTML element; text is always set as text, never parsed as HTML.
function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// Formatting. A missing figure (a rate with nothing to divide, a median of no cases) is a
// dash, never a zero.
const nf = new Intl.NumberFormat("en");
const none = (v) => v === null || v === undefined;
const count = (v) => (none(v) ? "—" : nf.format(v));
const pct = (v) => (none(v) ? "—" : `${Math.round(v * 100)}%`);
// one rounds half up to one decimal, the same way in every browser (toFixed alone rounds
// the exact binary value, which differs from the half-up a reader expects).
const one = (v) => (Math.round(v * 10) / 10).toFixed(1);
const hours = (v) => (none(v) ? "—" : v < 48 ? `${one(v)} h` : `${one(v / 24)} d`);
const rating = (v) => (none(v) ? "—" : one(v));
const stars = (v) => (none(v) ? "—" : `${one(v)} / 5`);
const dateTime = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" });
const when = (s) => (s ? dateTime.format(new Date(s)) : "—");
const dayMonth = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", timeZone: "UTC" });
const bucketLabel = (key) => dayMonth.format(new Date(`${String(key).slice(0, 10)}T00:00:00Z`));
const words = (s) => String(s || "").replaceAll("_", " ");

const state = {
  days: 30,
  from: null,
  to: null,
  mode: null, // "stats" (supervisors) or "queue" (handlers)
  areas: null, // GeoJSON of the city's areas
  areaNames: new Map(),
  departmentNames: new Map(),
  categoryNames: null,
  map: null,
  loading: 0,
};

// ---------------------------------------------------------------------------
// Sign-in

function showLogin(message) {
  $("#app-view").hidden = true;
  $("#drawer").hidden = true;
  $("#login-view").hidden = false;
  const err = $("#login-error");
  err.hidden = !message;
  err.textContent = message || "";
  $("#login-email").focus();
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const btn = $("#login-submit");
  btn.disabled = true;
  try {
    await signIn($("#login-email").value.trim(), $("#login-password").value);
    $("#login-password").value = "";
    showApp();
  } catch (err) {
    showLogin(err instanceof Problem && err.status === 401 ? "Wrong email or password." : err.message);
  } finally {
    btn.disabled = false;
  }
});

$("#logout").addEventListener("click", () => {
  signOut();
  showView("dashboard");
  state.mode = null;
  state.areas = null;
  state.categoryNames = null;
  state.departmentNames = new Map();
  showLogin();
});

// failed shows what went wrong; a lost session goes back to the sign-in form.
function failed(err) {
  if (err instanceof SignedOut) {
    showLogin("Your session has ended; please sign in again.");
    return;
  }
  const n = $("#notice");
  n.hidden = false;
  n.textContent = `Could not load the dashboard: ${err.message}`;
  console.error(err);
}

// ---------------------------------------------------------------------------
// Views: the dashboard, and for an administrator the city's administration.

function showView(name) {
  const admin = name === "admin";
  $("#main").hidden = admin;
  $("#admin").hidden = !admin;
  $("#period").hidden = admin || state.mode === "queue";
  $("#view-dashboard").setAttribute("aria-pressed", String(!admin));
  $("#view-admin").setAttribute("aria-pressed", String(admin));
  if (admin) {
    closeDrawer();
    reloadAdmin();
  }
}

$("#view-dashboard").addEventListener("click", () => showView("dashboard"));
$("#view-admin").addEventListener("click", () => showView("admin"));
setupAdmin(failed);

// ---------------------------------------------------------------------------
// Period

function setDays(days) {
  state.days = days;
  const to = new Date();
  to.setSeconds(0, 0);
  const from = new Date(to);
  from.setHours(0, 0, 0, 0);
  from.setDate(from.getDate() - (days - 1));
  state.from = from;
  state.to = to;
  markPeriod();
}

const isoDate = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;

function markPeriod() {
  for (const b of document.querySelectorAll("#period [data-days]")) {
    b.setAttribute("aria-pressed", String(Number(b.dataset.days) === state.days));
  }
  $("#period-from").value = isoDate(state.from);
  const last = new Date(state.to.getTime() - 1);
  $("#period-to").value = isoDate(last);
}

for (const b of document.querySelectorAll("#period [data-days]")) {
  b.addEventListener("click", () => {
    setDays(Number(b.dataset.days));
    load();
  });
}

$("#period-apply").addEventListener("click", () => {
  const f = $("#period-from").value;
  const t = $("#period-to").value;
  if (!f || !t) return;
  const from = new Date(`${f}T00:00:00`);
  let to = new Date(`${t}T00:00:00`);
  to.setDate(to.getDate() + 1);
  if (to > new Date()) {
    to = new Date();
    to.setSeconds(0, 0);
  }
  if (!(from < to)) {
    failed(new Error("the period must start before it ends"));
    return;
  }
  state.days = null;
  state.from = from;
  state.to = to;
  markPeriod();
  load();
});

// ---------------------------------------------------------------------------
// Loading

function showApp() {
  const s = session();
  if (!s) {
    showLogin();
    return;
  }
  $("#login-view").hidden = true;
  $("#app-view").hidden = false;
  $("#who").textContent = `${s.email || ""} · ${s.role}${s.department ? ` (${s.department})` : ""}`;
  $("#jurisdiction").textContent = s.jurisdiction ? `· ${s.jurisdiction}` : "";
  $("#views").hidden = s.role !== "admin";
  showView("dashboard");
  if (!state.map) state.map = new CaseMap($("#map"), openCase);
  setDays(state.days || 30);
  load();
}

function qs(params) {
  return new URLSearchParams(params).toString();
}

async function load() {
  const ticket = ++state.loading;
  const main = $("#main");
  main.dataset.state = "loading";
  main.dataset.from = state.from.toISOString();
  main.dataset.to = state.to.toISOString();
  $("#notice").hidden = true;
  try {
    if (!state.areas) {
      state.areas = await get("/v1/areas");
      state.areaNames = new Map(state.areas.features.map((f) => [f.properties.code, f.properties.name]));
      if (state.areas.jurisdiction) $("#jurisdiction").textContent = `· ${state.areas.jurisdiction.name}`;
    }
    if (state.mode !== "queue") {
      try {
        await loadStats(ticket);
        state.mode = "stats";
      } catch (err) {
        if (!(err instanceof Problem && err.status === 403)) throw err;
        state.mode = "queue"; // the KPIs are for supervisors: a handler sees their queue
      }
    }
    if (state.mode === "queue") await loadQueue(ticket);
    if (ticket !== state.loading) return;
    main.dataset.mode = state.mode;
    main.dataset.state = "ready";
  } catch (err) {
    if (ticket !== state.loading) return;
    main.dataset.state = "error";
    failed(err);
  }
}

async function loadStats(ticket) {
  const period = { from: state.from.toISOString(), to: state.to.toISOString() };
  const days = (state.to - state.from) / 86400000;
  const bucket = days <= 92 ? "day" : "week";
  const [byDept, byTime, overdue, breaching, hotAreas, hotCats, open] = await Promise.all([
    get(`/v1/stats?${qs({ ...period, group_by: "department" })}`),
    get(`/v1/stats?${qs({ ...period, group_by: bucket })}`),
    get("/v1/stats/overdue?limit=50"),
    get("/v1/stats/breaching?within_hours=24"),
    get(`/v1/stats/hotspots?${qs({ ...period, by: "area", limit: 8 })}`),
    get(`/v1/stats/hotspots?${qs({ ...period, by: "category", limit: 8 })}`),
    openCases(),
  ]);
  await categoryNames(overdue.cases[0] || breaching.cases[0] || open.cases[0]);
  if (ticket !== state.loading) return;
  for (const s of document.querySelectorAll(".supervisor-only")) s.hidden = false;
  $("#period").hidden = !$("#admin").hidden;
  for (const g of byDept.groups) state.departmentNames.set(g.key, g.name);
  const t = byDept.total;
  renderTiles([
    { kpi: "received", label: "Received", value: t.received, text: count(t.received), sub: `${count(t.dispatched)} dispatched` },
    { kpi: "closed", label: "Closed", value: t.closed, text: count(t.closed), sub: `closure rate ${pct(t.closure_rate)}` },
    { kpi: "backlog", label: "Open backlog", value: t.backlog, text: count(t.backlog), sub: "open at period end" },
    { kpi: "overdue", label: "Overdue now", value: t.overdue, text: count(t.overdue), sub: `${count(breaching.cases.length)} due within 24 h`, tone: t.overdue > 0 ? "bad" : "good" },
    { kpi: "on_time_rate", label: "On-time closure", value: t.on_time_rate, text: pct(t.on_time_rate), sub: `${count(t.closed_on_time)} of ${count(t.due)} due`, tone: rateTone(t.on_time_rate) },
    { kpi: "hours_to_close_p50", label: "Time to close", value: t.hours_to_close_p50, text: hours(t.hours_to_close_p50), sub: `median · p90 ${hours(t.hours_to_close_p90)}` },
    { kpi: "hours_to_first_response_p50", label: "First response", value: t.hours_to_first_response_p50, text: hours(t.hours_to_first_response_p50), sub: "median" },
    { kpi: "satisfaction", label: "Satisfaction", value: t.satisfaction, text: stars(t.satisfaction), sub: `${count(t.ratings)} ratings` },
  ]);
  volumeChart($("#chart-volume"), byTime.groups, bucketLabel);
  $("#volume-legend").replaceChildren(h("i", { class: "sw-received" }), " received", h("i", { class: "sw-closed" }), " closed",
    h("span", {}, `per ${bucket}`));
  rateChart($("#chart-ontime"), byTime.groups, bucketLabel);
  renderDepartments(byDept);
  renderBars($("#hot-areas"), hotAreas.items);
  renderBars($("#hot-categories"), hotCats.items);
  renderList($("#list-overdue"), overdue.cases, (c) => h("span", { class: "when late" }, `${hours(c.hours_overdue)} late`));
  $("#overdue-count").textContent = count(t.overdue);
  renderList($("#list-breaching"), breaching.cases, (c) => h("span", { class: "when soon" }, `in ${hours(c.hours_left)}`));
  $("#breaching-count").textContent = count(breaching.cases.length);
  drawMap(open.cases, open.source);
  $("#generated").textContent = `Figures computed ${when(byDept.generated_at)} for ${when(byDept.from)} – ${when(byDept.to)}.`;
}

// The statuses of open cases, and of those being worked.
const OPEN = "submitted,dispatched,triage,accepted,in_progress,resolved";
const WORKED = ["dispatched", "triage", "accepted", "in_progress"];

// openCases reads the city's open cases for the map from the export (one streamed
// answer, however many), or, where the export is not there, from the work queue.
async function openCases() {
  const now = Date.now();
  let fc;
  try {
    fc = await get("/v1/exports/cases.geojson?status=open");
  } catch (err) {
    if (!(err instanceof Problem && (err.status === 404 || err.status === 403))) throw err;
    try {
      const items = await queuePages({ status: OPEN });
      return { source: "queue", cases: items.map((c) => mapCase(c, now)) };
    } catch (err2) {
      // An administrator has the figures but no queue: the map then shows the areas only.
      if (err2 instanceof Problem && err2.status === 403) return { source: "none", cases: [] };
      throw err2;
    }
  }
  const cases = fc.features
    .filter((f) => f.geometry && f.geometry.type === "Point")
    // The case's id is the feature's id (RFC 7946, section 3.2).
    .map((f) => mapCase({ ...f.properties, id: f.id ?? (f.properties || {}).id, lon: f.geometry.coordinates[0], lat: f.geometry.coordinates[1] }, now));
  return { source: "export", cases };
}

function mapCase(c, now) {
  // Overdue as the figures count it: past its deadline while being worked (a resolved
  // case waits for its reporter, not for the department).
  const late = !!c.due_at && Date.parse(c.due_at) < now && WORKED.includes(c.status);
  return {
    id: c.id, number: c.number, lat: c.lat, lon: c.lon, overdue: late,
    tip: `${c.number} · ${categoryName(c.category)} · ${words(c.status)}${late ? " · overdue" : ""}`,
  };
}

// queuePages reads up to five pages of 200 cases of the work queue.
async function queuePages(params) {
  const items = [];
  let cursor = "";
  for (let i = 0; i < 5; i++) {
    const page = await get(`/v1/queue?${qs({ ...params, limit: 200, ...(cursor ? { cursor } : {}) })}`);
    items.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return items;
}

// loadQueue fills the page for a case handler from their department's work queue: the
// period's KPIs are the supervisors'.
async function loadQueue(ticket) {
  const pages = await queuePages({ sort: "due", status: OPEN });
  const counts = await get("/v1/queue/counts");
  await categoryNames(pages[0]);
  if (ticket !== state.loading) return;
  for (const s of document.querySelectorAll(".supervisor-only")) s.hidden = true;
  $("#period").hidden = true;
  const st = counts.statuses;
  const open = Object.values(st).reduce((a, b) => a + b, 0);
  renderTiles([
    { kpi: "open", label: "Open cases", value: open, text: count(open), sub: "in your department" },
    { kpi: "overdue", label: "Overdue now", value: counts.overdue, text: count(counts.overdue), sub: "past their deadline", tone: counts.overdue > 0 ? "bad" : "good" },
    { kpi: "unassigned", label: "Unassigned", value: counts.unassigned, text: count(counts.unassigned), sub: "nobody on them yet" },
    { kpi: "dispatched", label: "New", value: st.dispatched, text: count(st.dispatched), sub: "waiting to be accepted" },
    { kpi: "in_progress", label: "In progress", value: st.in_progress, text: count(st.in_progress), sub: `${count(st.accepted)} accepted` },
    { kpi: "resolved", label: "Resolved", value: st.resolved, text: count(st.resolved), sub: "waiting for the reporter" },
  ]);
  const now = Date.now();
  const hoursFrom = (s) => (Date.parse(s) - now) / 3600000;
  // Deadlines run while a case is worked (as the queue's overdue count says).
  const worked = pages.filter((c) => c.due_at && WORKED.includes(c.status));
  const late = worked.filter((c) => hoursFrom(c.due_at) < 0);
  const soon = worked.filter((c) => hoursFrom(c.due_at) >= 0 && hoursFrom(c.due_at) <= 24);
  renderList($("#list-overdue"), late, (c) => h("span", { class: "when late" }, `${hours(-hoursFrom(c.due_at))} late`));
  $("#overdue-count").textContent = count(counts.overdue);
  renderList($("#list-breaching"), soon, (c) => h("span", { class: "when soon" }, `in ${hours(hoursFrom(c.due_at))}`));
  $("#breaching-count").textContent = count(soon.length);
  drawMap(pages.map((c) => mapCase(c, now)), "queue");
  $("#generated").textContent = `Your department's queue as of ${when(new Date().toISOString())}.`;
}

// The map draws at most this many cases; a city with more open cases shows a sample and
// says so (the lists and the figures still count all of them).
const MAP_LIMIT = 5000;

function drawMap(cases, source) {
  state.map.setAreas(state.areas, cases.map((c) => [c.lon, c.lat]));
  const shown = cases.length > MAP_LIMIT ? cases.filter((_, i) => i % Math.ceil(cases.length / MAP_LIMIT) === 0) : cases;
  state.map.setCases(shown);
  const late = cases.filter((c) => c.overdue).length;
  $("#map-note").textContent = `${count(cases.length)} open cases, ${count(late)} overdue` +
    (shown.length < cases.length ? ` (the map shows ${count(shown.length)} of them)` : "") +
    ". Scroll to zoom, drag to move, click a case for its details.";
  $("#map").dataset.cases = String(shown.length);
  $("#map").dataset.source = source;
}

// ---------------------------------------------------------------------------
// Rendering

function rateTone(v) {
  if (none(v)) return "";
  return v >= 0.9 ? "good" : v >= 0.7 ? "warn" : "bad";
}

function renderTiles(tiles) {
  $("#tiles").replaceChildren(...tiles.map((t) =>
    h("div", { class: `tile ${t.tone || ""}`, "data-kpi": t.kpi, "data-value": none(t.value) ? "null" : String(t.value) },
      h("div", { class: "label" }, t.label),
      h("div", { class: "value" }, t.text),
      h("div", { class: "sub" }, t.sub))));
}

const columns = [
  { kpi: "received", label: "Received", fmt: count },
  { kpi: "closed", label: "Closed", fmt: count },
  { kpi: "backlog", label: "Backlog", fmt: count },
  { kpi: "overdue", label: "Overdue", fmt: count, tone: (v) => (v > 0 ? "bad" : "") },
  { kpi: "on_time_rate", label: "On time", fmt: pct, tone: (v) => (none(v) ? "" : v < 0.7 ? "bad" : v >= 0.9 ? "good" : "") },
  { kpi: "closure_rate", label: "Closure", fmt: pct },
  { kpi: "rework_rate", label: "Rework", fmt: pct },
  { kpi: "hours_to_close_p50", label: "Median to close", fmt: hours },
  { kpi: "satisfaction", label: "Rating", fmt: rating },
];

let sortBy = { kpi: "received", dir: -1 };
let lastDepartments = null;

function renderDepartments(stats) {
  lastDepartments = stats;
  const table = $("#departments");
  const head = h("tr", {}, h("th", { "data-kpi": "name" }, "Department"),
    ...columns.map((c) => h("th", {
      "data-kpi": c.kpi, "aria-sort": sortBy.kpi === c.kpi ? (sortBy.dir < 0 ? "descending" : "ascending") : null,
      onclick: () => {
        sortBy = { kpi: c.kpi, dir: sortBy.kpi === c.kpi ? -sortBy.dir : -1 };
        renderDepartments(lastDepartments);
      },
    }, c.label)));
  const val = (g) => (none(g[sortBy.kpi]) ? -Infinity : g[sortBy.kpi]);
  // A department with nothing received, closed or open in the period is left out.
  const quiet = (g) => !g.received && !g.closed && !g.backlog && !g.overdue;
  const groups = stats.groups.filter((g) => !quiet(g)).sort((a, b) => sortBy.dir * (val(a) - val(b)) || a.name.localeCompare(b.name));
  const row = (g, first) => h("tr", { "data-key": g.key }, first,
    ...columns.map((c) => h("td", { "data-kpi": c.kpi, class: c.tone ? c.tone(g[c.kpi]) : null }, c.fmt(g[c.kpi]))));
  table.replaceChildren(
    h("thead", {}, head),
    h("tbody", {}, ...(groups.length ? groups.map((g) => row(g, h("td", {}, g.name, " ", h("span", { class: "code" }, g.key))))
      : [h("tr", {}, h("td", { colspan: columns.length + 1, class: "muted" }, "No cases in this period."))])),
    h("tfoot", {}, row({ ...stats.total, key: "total" }, h("td", {}, "All departments",
      groups.length < stats.groups.length ? h("span", { class: "code" }, ` (${stats.groups.length - groups.length} without cases not shown)`) : null))));
}

function renderBars(list, items) {
  const max = Math.max(1, ...items.map((i) => i.count));
  list.replaceChildren(...(items.length ? items.map((i) => h("li", { "data-key": i.key },
    h("div", { class: "bar", title: i.name }, h("span", { style: `width:${((100 * i.count) / max).toFixed(1)}%` }), h("b", {}, i.name)),
    h("span", { class: "n" }, count(i.count))))
    : [h("li", { class: "muted" }, "No reports in this period.")]));
}

function renderList(list, cases, right) {
  list.replaceChildren(...(cases.length ? cases.map((c) => h("li", {
    "data-id": c.id, tabindex: "0", onclick: () => openCase(c.id),
    onkeydown: (e) => { if (e.key === "Enter") openCase(c.id); },
  },
  h("span", { class: "num" }, c.number),
  h("span", { class: "what" }, [categoryName(c.category), c.area ? state.areaNames.get(c.area) || c.area : "", c.department].filter(Boolean).join(" · ")),
  right(c)))
    : [h("li", { class: "none" }, "None.")]));
}

// ---------------------------------------------------------------------------
// A case

// categoryNames learns the names of the city's categories, from GET /v1/categories at the
// point of one of its cases (the categories are the city's, wherever in it the point is).
async function categoryNames(c) {
  if (state.categoryNames || !c || !Number.isFinite(c.lat)) return;
  try {
    const list = await get(`/v1/categories?${qs({ lat: c.lat, lon: c.lon })}`);
    state.categoryNames = new Map(list.categories.map((x) => [x.code, x.name]));
  } catch (err) {
    if (err instanceof SignedOut) throw err;
    // Without names the codes do.
  }
}

function categoryName(code) {
  return (state.categoryNames && state.categoryNames.get(code)) || words(code);
}

async function openCase(id) {
  const drawer = $("#drawer");
  const body = $("#case-body");
  drawer.hidden = false;
  drawer.dataset.state = "loading";
  drawer.dataset.id = id;
  $("#case-title").textContent = "Case";
  body.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  state.map.select(id);
  try {
    const c = await get(`/v1/cases/${encodeURIComponent(id)}`);
    await categoryNames(c);
    const cat = categoryName(c.category);
    if (drawer.dataset.id !== id) return;
    const late = c.status !== "closed" && c.due_at && Date.parse(c.due_at) < Date.now();
    $("#case-title").textContent = `Case ${c.number}`;
    const facts = [
      ["Status", h("span", {}, h("span", { class: `pill ${c.status === "closed" ? "closed" : late ? "late" : ""}` }, words(c.status)),
        c.resolution ? ` ${words(c.resolution)}` : "", late ? " overdue" : "")],
      ["Category", cat],
      ["Department", c.department ? state.departmentNames.get(c.department) || c.department : "—"],
      ["Area", c.area ? state.areaNames.get(c.area) || c.area : "—"],
      ["Received", when(c.created_at)],
      ["Due", when(c.due_at)],
      ["Priority", String(c.priority)],
      ["Supporters", String(c.supporters)],
      ["Address", c.address || "—"],
      ["Position", `${c.lat.toFixed(5)}, ${c.lon.toFixed(5)}`],
    ];
    const photos = (c.photos || []).map((p) => {
      const src = p.thumbnail_url || p.url;
      if (!src) return h("span", {}, p.processing ? "processing…" : "no preview");
      return h("a", { href: p.url || src, target: "_blank", rel: "noopener", title: `${p.kind} photo` },
        h("img", { src, alt: `${p.kind} photo`, loading: "lazy" }));
    });
    body.replaceChildren(
      h("dl", { class: "facts" }, ...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      c.description ? h("p", { class: "description" }, c.description) : null,
      h("h3", {}, `Photos (${photos.length})`),
      photos.length ? h("div", { class: "photos" }, ...photos) : h("p", { class: "muted" }, "No photos."),
      h("h3", {}, "Timeline"),
      h("ol", { class: "timeline" }, ...(c.timeline || []).map((ev) => h("li", { class: ev.public ? "" : "internal", "data-type": ev.type },
        h("div", { class: "t" }, `${when(ev.created_at)} · ${words(ev.actor_role)}${ev.public ? "" : " · internal"}`),
        h("div", { class: "ev" }, words(ev.type), ev.from_status && ev.from_status !== ev.to_status ? `: ${words(ev.from_status)} → ${words(ev.to_status)}` : ""),
        ev.note ? h("p", { class: "note" }, ev.note) : null))),
    );
    drawer.dataset.state = "ready";
  } catch (err) {
    if (err instanceof SignedOut) {
      failed(err);
      return;
    }
    body.replaceChildren(h("p", { class: "error" }, `Could not load the case: ${err.message}`));
    drawer.dataset.state = "error";
  }
}

function closeDrawer() {
  $("#drawer").hidden = true;
  $("#drawer").dataset.id = "";
  state.map && state.map.select(null);
}

$("#drawer-close").addEventListener("click", closeDrawer);
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape") closeDrawer();
});
$("#zoom-in").addEventListener("click", () => state.map && state.map.zoom(1 / 1.6));
$("#zoom-out").addEventListener("click", () => state.map && state.map.zoom(1.6));
$("#zoom-reset").addEventListener("click", () => state.map && state.map.reset());

if (session()) showApp();
else showLogin();
