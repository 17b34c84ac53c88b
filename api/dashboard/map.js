// The map of open cases over the city's areas, drawn as SVG without tiles: longitude and
// latitude are projected equirectangularly, longitude scaled by the cosine of the city's
// middle latitude so shapes keep their proportions at that latitude. The wheel and the
// buttons zoom (by changing the viewBox), dragging pans.

import { svg } from "./charts.js";

const DOT_PX = 4.5; // a case's dot, in screen pixels whatever the zoom

function rings(geometry) {
  if (!geometry) return [];
  if (geometry.type === "Polygon") return geometry.coordinates;
  if (geometry.type === "MultiPolygon") return geometry.coordinates.flat();
  return [];
}

export class CaseMap {
  constructor(el, onSelect) {
    this.el = el;
    this.onSelect = onSelect;
    this.svg = svg("svg", { preserveAspectRatio: "xMidYMid meet", role: "img", "aria-label": "Map of open cases" });
    this.areaLayer = svg("g", { class: "areas" });
    this.caseLayer = svg("g", { class: "cases-layer" });
    this.svg.append(this.areaLayer, this.caseLayer);
    this.tip = document.createElement("div");
    this.tip.className = "map-tip";
    this.tip.hidden = true;
    el.replaceChildren(this.svg, this.tip);
    this.home = null;
    this.vb = null;
    this.project = null;
    this.listen();
    new ResizeObserver(() => this.sizeDots()).observe(el);
  }

  // setAreas fixes the projection from the areas' bounds and draws them.
  setAreas(fc, fallbackPoints = []) {
    let minLon = Infinity, maxLon = -Infinity, minLat = Infinity, maxLat = -Infinity;
    const grow = ([lon, lat]) => {
      minLon = Math.min(minLon, lon); maxLon = Math.max(maxLon, lon);
      minLat = Math.min(minLat, lat); maxLat = Math.max(maxLat, lat);
    };
    const features = (fc && fc.features) || [];
    for (const f of features) for (const r of rings(f.geometry)) r.forEach(grow);
    if (minLon === Infinity) fallbackPoints.forEach(grow);
    if (minLon === Infinity) { minLon = -0.01; maxLon = 0.01; minLat = -0.01; maxLat = 0.01; }
    const k = Math.cos((((minLat + maxLat) / 2) * Math.PI) / 180);
    // 1000 units a degree keep coordinates readable and precise to about a metre.
    this.project = ([lon, lat]) => [(lon - minLon) * k * 1000, (maxLat - lat) * 1000];
    const [w, h] = this.project([maxLon, minLat]);
    const m = Math.max(w, h) * 0.02;
    this.home = { x: -m, y: -m, w: w + 2 * m, h: h + 2 * m };
    this.areaLayer.replaceChildren();
    for (const f of features) {
      const d = rings(f.geometry)
        .map((r) => "M" + r.map((p) => this.project(p).map((v) => v.toFixed(2)).join(",")).join("L") + "Z")
        .join("");
      const name = (f.properties && (f.properties.name || f.properties.code)) || "";
      this.areaLayer.append(svg("path", { class: "area", d, "fill-rule": "evenodd", "data-name": name, "data-code": (f.properties && f.properties.code) || "" }));
    }
    this.setView(this.home);
  }

  // setCases draws the cases: [{id, number, lat, lon, overdue, tip}].
  setCases(cases) {
    this.caseLayer.replaceChildren();
    // Overdue cases last, so they are drawn on top.
    const sorted = [...cases].sort((a, b) => Number(a.overdue) - Number(b.overdue));
    for (const c of sorted) {
      if (!Number.isFinite(c.lat) || !Number.isFinite(c.lon)) continue;
      const [x, y] = this.project([c.lon, c.lat]);
      this.caseLayer.append(svg("circle", {
        class: `case ${c.overdue ? "overdue" : "open"}`, cx: x.toFixed(2), cy: y.toFixed(2), r: 1,
        "data-id": c.id, "data-number": c.number, "data-tip": c.tip,
      }));
    }
    this.sizeDots();
  }

  select(id) {
    for (const e of this.caseLayer.querySelectorAll(".selected")) e.classList.remove("selected");
    const e = id && this.caseLayer.querySelector(`[data-id="${CSS.escape(id)}"]`);
    if (e) e.classList.add("selected");
  }

  setView(vb) {
    this.vb = { ...vb };
    this.svg.setAttribute("viewBox", `${vb.x} ${vb.y} ${vb.w} ${vb.h}`);
    this.sizeDots();
  }

  // scale is how many viewBox units one screen pixel is.
  scale() {
    const r = this.svg.getBoundingClientRect();
    if (!this.vb || !r.width || !r.height) return 1;
    return Math.max(this.vb.w / r.width, this.vb.h / r.height);
  }

  sizeDots() {
    const r = (DOT_PX * this.scale()).toFixed(3);
    for (const c of this.caseLayer.children) c.setAttribute("r", r);
  }

  // toView turns a point of the page into viewBox units.
  toView(clientX, clientY) {
    const p = new DOMPoint(clientX, clientY).matrixTransform(this.svg.getScreenCTM().inverse());
    return [p.x, p.y];
  }

  zoom(factor, clientX, clientY) {
    if (!this.vb || !this.home) return;
    const w = Math.min(this.home.w * 1.5, Math.max(this.home.w / 200, this.vb.w * factor));
    const f = w / this.vb.w;
    let cx, cy;
    if (clientX === undefined) {
      cx = this.vb.x + this.vb.w / 2;
      cy = this.vb.y + this.vb.h / 2;
    } else {
      [cx, cy] = this.toView(clientX, clientY);
    }
    this.setView({ x: cx - (cx - this.vb.x) * f, y: cy - (cy - this.vb.y) * f, w: this.vb.w * f, h: this.vb.h * f });
  }

  reset() {
    if (this.home) this.setView(this.home);
  }

  listen() {
    const s = this.svg;
    s.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.zoom(Math.exp(e.deltaY * 0.0015), e.clientX, e.clientY);
    }, { passive: false });
    let drag = null;
    s.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      drag = { x: e.clientX, y: e.clientY, vb: { ...this.vb }, scale: this.scale(), moved: false, id: e.pointerId };
    });
    s.addEventListener("pointermove", (e) => {
      if (drag && drag.id === e.pointerId) {
        const dx = e.clientX - drag.x;
        const dy = e.clientY - drag.y;
        if (!drag.moved && Math.hypot(dx, dy) > 4) {
          drag.moved = true;
          s.setPointerCapture(e.pointerId);
          s.classList.add("dragging");
          this.tip.hidden = true;
        }
        if (drag.moved) {
          this.setView({ ...drag.vb, x: drag.vb.x - dx * drag.scale, y: drag.vb.y - dy * drag.scale });
        }
        return;
      }
      this.hover(e);
    });
    const end = (e) => {
      if (!drag || drag.id !== e.pointerId) return;
      const moved = drag.moved;
      drag = null;
      s.classList.remove("dragging");
      if (moved) {
        // The click that follows a drag (if any: it fires at once) is not a choice of a case.
        const swallow = (ev) => ev.stopPropagation();
        s.addEventListener("click", swallow, { capture: true, once: true });
        setTimeout(() => s.removeEventListener("click", swallow, { capture: true }), 0);
      }
    };
    s.addEventListener("pointerup", end);
    s.addEventListener("pointercancel", end);
    s.addEventListener("pointerleave", () => { this.tip.hidden = true; });
    s.addEventListener("click", (e) => {
      const id = e.target.dataset && e.target.dataset.id;
      if (id) this.onSelect(id);
    });
  }

  hover(e) {
    const t = e.target;
    const text = (t.dataset && (t.dataset.tip || t.dataset.name)) || "";
    if (!text) {
      this.tip.hidden = true;
      return;
    }
    const box = this.el.getBoundingClientRect();
    this.tip.textContent = text;
    this.tip.hidden = false;
    const x = Math.min(e.clientX - box.left + 12, box.width - this.tip.offsetWidth - 4);
    this.tip.style.left = `${Math.max(4, x)}px`;
    this.tip.style.top = `${e.clientY - box.top + 12}px`;
  }
}
