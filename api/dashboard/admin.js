// The administration pages of the dashboard: the city's departments, categories, routing
// rules, areas, staff and Open311 keys, each read from and changed through the admin API
// (/v1/admin/...). The page checks nothing itself: the API validates every change, and a
// refused one shows the problem's detail in its section, the lists left as the API has them.

import { send, session, Problem, SignedOut } from "./api.js";

const $ = (sel) => document.querySelector(sel);

// h builds an HTML element; text is always set as text, never parsed as HTML.
function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "value") e.value = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

const dateTime = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" });
const when = (s) => (s ? dateTime.format(new Date(s)) : "—");
const enc = encodeURIComponent;

const data = { departments: [], categories: [], routing: [], areas: [], staff: [], keys: [] };

// say shows the outcome of a change in a section: the problem's detail when refused.
function say(section, err, ok) {
  const out = $(`#adm-${section} .adm-msg`);
  out.hidden = false;
  out.className = `adm-msg ${err ? "error" : "ok"}`;
  out.textContent = err ? (err instanceof Problem ? err.message : `Could not save: ${err.message}`) : ok;
  out.dataset.state = err ? "error" : "ok";
}

function clearSay(section) {
  const out = $(`#adm-${section} .adm-msg`);
  out.hidden = true;
  out.textContent = "";
  out.dataset.state = "";
}

let onSignedOut = () => {};

// change runs one change of a section, shows how it went, then reloads the section's lists.
async function change(section, button, fn, ok) {
  clearSay(section);
  if (button) button.disabled = true;
  try {
    await fn();
    say(section, null, ok);
  } catch (err) {
    if (err instanceof SignedOut) return onSignedOut(err);
    say(section, err);
  } finally {
    if (button) button.disabled = false;
  }
  await reload();
}

const options = (items, value, blank) => [
  ...(blank !== undefined ? [h("option", { value: "" }, blank)] : []),
  ...items.map((i) => h("option", { value: i.code, selected: i.code === value }, i.name ? `${i.name} (${i.code})` : i.code)),
];

function table(id, head, rows, empty) {
  $(id).replaceChildren(
    h("thead", {}, h("tr", {}, ...head.map((x) => h("th", {}, x)))),
    h("tbody", {}, ...(rows.length ? rows : [h("tr", {}, h("td", { colspan: head.length, class: "muted" }, empty))])));
}

function render() {
  const deptName = new Map(data.departments.map((d) => [d.code, d.name]));
  const catName = new Map(data.categories.map((c) => [c.code, c.name]));
  const areaName = new Map(data.areas.map((a) => [a.code, a.name]));

  table("#adm-departments-list", ["Code", "Name"], data.departments.map((d) =>
    h("tr", { "data-code": d.code }, h("td", { class: "code" }, d.code), h("td", {}, d.name))), "No departments.");

  table("#adm-categories-list", ["Category", "Name", "Department", "SLA hours", ""], data.categories.map((c) => {
    const name = h("input", { type: "text", value: c.name, "aria-label": `Name of ${c.code}`, class: "name" });
    const dept = h("select", { "aria-label": `Department of ${c.code}`, class: "department" }, ...options(data.departments, c.department || "", "—"));
    const sla = h("input", { type: "number", step: "1", value: String(c.sla_hours), "aria-label": `SLA hours of ${c.code}`, class: "sla" });
    const save = h("button", { type: "button", class: "small-btn" }, "Save");
    save.addEventListener("click", () => change("categories", save, () => {
      // PUT replaces the category: what the page does not edit goes back as it came.
      const body = { ...c, name: name.value.trim(), department: dept.value, sla_hours: Number(sla.value) };
      if (sla.value.trim() === "" || !Number.isInteger(body.sla_hours)) body.sla_hours = sla.value;
      return send("PUT", `/v1/admin/categories/${enc(c.code)}`, body);
    }, `Category ${c.code} saved.`));
    return h("tr", { "data-code": c.code }, h("td", { class: "code" }, c.code), h("td", {}, name), h("td", {}, dept), h("td", {}, sla), h("td", {}, save));
  }), "No categories.");

  table("#adm-routing-list", ["Category", "Area", "Department", ""], data.routing.map((r) => {
    const rm = h("button", { type: "button", class: "link danger" }, "Remove");
    rm.addEventListener("click", () => change("routing", rm,
      () => send("DELETE", `/v1/admin/routing/${enc(r.category)}/${enc(r.area)}`), `Rule for ${r.category} in ${r.area} removed.`));
    return h("tr", { "data-key": `${r.category}/${r.area}` },
      h("td", {}, catName.get(r.category) || r.category), h("td", {}, areaName.get(r.area) || r.area),
      h("td", {}, deptName.get(r.department) || r.department), h("td", {}, rm));
  }), "No routing rules: each category goes to its own department.");
  $("#adm-rule-category").replaceChildren(...options(data.categories, $("#adm-rule-category").value));
  $("#adm-rule-area").replaceChildren(...options(data.areas, $("#adm-rule-area").value));
  $("#adm-rule-department").replaceChildren(...options(data.departments, $("#adm-rule-department").value));

  table("#adm-areas-list", ["Code", "Name"], data.areas.map((a) =>
    h("tr", { "data-code": a.code }, h("td", { class: "code" }, a.code), h("td", {}, a.name || "—"))), "No areas.");

  const me = (session() || {}).email;
  table("#adm-staff-list", ["Email", "Name", "Role", "Department", "Status", ""], data.staff.map((u) => {
    // Nobody disables their own account from here: they would lock themselves out.
    const toggle = u.email === me ? h("span", { class: "muted small" }, "you") : staffToggle(u);
    return h("tr", { "data-id": u.id, class: u.disabled ? "disabled" : null },
      h("td", {}, u.email), h("td", {}, u.name), h("td", {}, u.role),
      h("td", {}, u.department ? deptName.get(u.department) || u.department : "—"),
      h("td", {}, h("span", { class: `pill ${u.disabled ? "late" : "closed"}` }, u.disabled ? "disabled" : "active")), h("td", {}, toggle));
  }), "No staff.");
  $("#adm-staff-department").replaceChildren(...options(data.departments, $("#adm-staff-department").value, "— none —"));

  table("#adm-keys-list", ["Client", "Source", "Created", ""], data.keys.map((k) => {
    const rm = h("button", { type: "button", class: "link danger" }, "Revoke");
    rm.addEventListener("click", () => {
      if (!window.confirm(`Revoke the key of ${k.name}? Its client is refused at once.`)) return;
      change("keys", rm, () => send("DELETE", `/v1/admin/open311-keys/${enc(k.id)}`), `Key of ${k.name} revoked.`);
    });
    return h("tr", { "data-id": k.id }, h("td", {}, k.name), h("td", {}, k.source), h("td", {}, when(k.created_at)), h("td", {}, rm));
  }), "No Open311 keys.");
}

function staffToggle(u) {
  const toggle = h("button", { type: "button", class: `link${u.disabled ? "" : " danger"}` }, u.disabled ? "Enable" : "Disable");
  toggle.addEventListener("click", () => change("staff", toggle,
    () => send("PATCH", `/v1/admin/staff/${enc(u.id)}`, { disabled: !u.disabled }), `${u.email} ${u.disabled ? "enabled" : "disabled"}.`));
  return toggle;
}

// reload reads every list of the admin API again.
export async function reload() {
  const view = $("#admin");
  view.dataset.state = "loading";
  try {
    const [departments, categories, routing, areas, staff, keys] = await Promise.all([
      send("GET", "/v1/admin/departments"),
      send("GET", "/v1/admin/categories"),
      send("GET", "/v1/admin/routing"),
      send("GET", "/v1/admin/areas"),
      send("GET", "/v1/admin/staff"),
      send("GET", "/v1/admin/open311-keys"),
    ]);
    Object.assign(data, { departments, categories, routing, staff, keys });
    data.areas = areas.features.map((f) => ({
      code: String((f.properties && f.properties.code) || f.id || ""),
      name: (f.properties && f.properties.name) || "",
    }));
    render();
    $("#admin-notice").hidden = true;
    view.dataset.state = "ready";
  } catch (err) {
    if (err instanceof SignedOut) return onSignedOut(err);
    $("#admin-notice").hidden = false;
    $("#admin-notice").textContent = `Could not load the city's configuration: ${err.message}`;
    view.dataset.state = "error";
  }
}

function form(id, section, fn, ok) {
  const f = $(id);
  f.addEventListener("submit", (e) => {
    e.preventDefault();
    const btn = f.querySelector("button[type=submit]");
    change(section, btn, async () => {
      await fn(f);
      f.reset();
    }, typeof ok === "function" ? ok(f) : ok);
  });
}

const val = (f, name) => f.elements[name].value.trim();

// setup wires the forms once; signedOut is what to do when the session has gone.
export function setup(signedOut) {
  onSignedOut = signedOut;
  form("#adm-department-form", "departments",
    (f) => send("POST", "/v1/admin/departments", { code: val(f, "code"), name: val(f, "name") }), "Department added.");
  form("#adm-rule-form", "routing",
    (f) => send("PUT", `/v1/admin/routing/${enc(val(f, "category"))}/${enc(val(f, "area"))}`, { department: val(f, "department") }), "Routing rule saved.");
  form("#adm-staff-form", "staff", (f) => send("POST", "/v1/admin/staff", {
    email: val(f, "email"), name: val(f, "name"), password: f.elements.password.value,
    role: val(f, "role"), ...(val(f, "department") ? { department: val(f, "department") } : {}),
  }), "Member of staff added.");

  // A new key is shown once: the API keeps only its digest.
  const keyForm = $("#adm-key-form");
  keyForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const shown = $("#adm-key-new");
    shown.hidden = true;
    change("keys", keyForm.querySelector("button[type=submit]"), async () => {
      const k = await send("POST", "/v1/admin/open311-keys", { name: val(keyForm, "name") });
      keyForm.reset();
      $("#adm-key-value").textContent = k.key;
      $("#adm-key-client").textContent = k.name;
      shown.hidden = false;
    }, "Key created.");
  });

  const areaForm = $("#adm-area-form");
  areaForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const file = areaForm.elements.file.files[0];
    const replace = areaForm.elements.mode.value === "replace";
    change("areas", areaForm.querySelector("button[type=submit]"), async () => {
      if (!file) throw new Error("choose a GeoJSON file first");
      const text = await file.text();
      const out = await send(replace ? "PUT" : "POST", "/v1/admin/areas", text);
      areaForm.reset();
      return out;
    }, replace ? "Areas replaced." : "Areas added.");
  });
}
