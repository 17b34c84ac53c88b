// Charts drawn as SVG, sized to their container in pixels so text stays crisp; they are
// drawn again when the container changes size.

const NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return e;
}

// scaleFor picks an axis for counts up to v: a step of 1, 2 or 5 times a power of ten
// (never a fraction: these are counts) and a maximum of at most four or five steps.
function scaleFor(v) {
  const raw = Math.max(1, v) / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw));
  return { max: step * Math.max(1, Math.ceil(v / step)), step };
}

const redraws = new Map();
const observer = new ResizeObserver((entries) => {
  for (const e of entries) {
    const f = redraws.get(e.target);
    if (f) f();
  }
});

// draw renders into el with f(width, height) now and whenever el's size changes.
function draw(el, f) {
  const run = () => {
    const w = el.clientWidth;
    const h = el.clientHeight;
    if (w === 0 || h === 0) return;
    el.replaceChildren(f(w, h));
  };
  if (!redraws.has(el)) observer.observe(el);
  redraws.set(el, run);
  run();
}

const pad = { left: 40, right: 8, top: 10, bottom: 26 };

function frame(w, h, yMax, step, fmt) {
  const g = svg("g");
  const ih = h - pad.top - pad.bottom;
  for (let v = 0; v <= yMax + 1e-9; v += step) {
    const y = pad.top + ih - (ih * v) / yMax;
    g.append(svg("line", { class: v === 0 ? "axis" : "grid-line", x1: pad.left, x2: w - pad.right, y1: y, y2: y }));
    g.append(svg("text", { x: pad.left - 6, y: y + 4, "text-anchor": "end" }, fmt(v)));
  }
  return g;
}

// xLabels puts at most about one label per 70 pixels under the buckets.
function xLabels(g, keys, xOf, h, w, label) {
  const every = Math.max(1, Math.ceil((keys.length * 70) / Math.max(1, w - pad.left - pad.right)));
  keys.forEach((k, i) => {
    if (i % every !== 0) return;
    g.append(svg("text", { x: xOf(i), y: h - 8, "text-anchor": "middle" }, label(k)));
  });
}

function empty(w, h, text) {
  return svg("svg", { viewBox: `0 0 ${w} ${h}` }, svg("text", { class: "empty", x: w / 2, y: h / 2, "text-anchor": "middle" }, text));
}

// volumeChart draws received and closed per bucket as pairs of bars.
export function volumeChart(el, groups, label) {
  draw(el, (w, h) => {
    if (!groups.length) return empty(w, h, "No cases in this period");
    const { max: yMax, step } = scaleFor(Math.max(...groups.map((g) => Math.max(g.received, g.closed))));
    const s = svg("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": "Cases received and closed over time" });
    s.append(frame(w, h, yMax, step, (v) => String(v)));
    const iw = w - pad.left - pad.right;
    const ih = h - pad.top - pad.bottom;
    const slot = iw / groups.length;
    const bw = Math.max(1, Math.min(14, slot * 0.36));
    const xOf = (i) => pad.left + slot * i + slot / 2;
    const yOf = (v) => pad.top + ih - (ih * v) / yMax;
    groups.forEach((g, i) => {
      const x = xOf(i);
      const tip = `${label(g.key)}: ${g.received} received, ${g.closed} closed`;
      s.append(svg("rect", { class: "bar-received", x: x - bw - 0.5, y: yOf(g.received), width: bw, height: pad.top + ih - yOf(g.received), rx: 1.5 }, svg("title", {}, tip)));
      s.append(svg("rect", { class: "bar-closed", x: x + 0.5, y: yOf(g.closed), width: bw, height: pad.top + ih - yOf(g.closed), rx: 1.5 }, svg("title", {}, tip)));
    });
    xLabels(s, groups.map((g) => g.key), xOf, h, w, label);
    return s;
  });
}

// rateChart draws a rate (0..1, or null where nothing was due) per bucket as a line; a
// bucket without a rate leaves a gap.
export function rateChart(el, groups, label) {
  draw(el, (w, h) => {
    if (!groups.some((g) => g.on_time_rate !== null && g.on_time_rate !== undefined)) {
      return empty(w, h, "No deadlines fell in this period");
    }
    const s = svg("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": "On-time closure rate over time" });
    s.append(frame(w, h, 1, 0.25, (v) => `${Math.round(v * 100)}%`));
    const iw = w - pad.left - pad.right;
    const ih = h - pad.top - pad.bottom;
    const slot = iw / groups.length;
    const xOf = (i) => pad.left + slot * i + slot / 2;
    const yOf = (v) => pad.top + ih - ih * v;
    let runs = [];
    let run = [];
    groups.forEach((g, i) => {
      if (g.on_time_rate === null || g.on_time_rate === undefined) {
        if (run.length) runs.push(run);
        run = [];
      } else {
        run.push([xOf(i), yOf(g.on_time_rate), g, i]);
      }
    });
    if (run.length) runs.push(run);
    for (const r of runs) {
      const d = r.map(([x, y], j) => `${j ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join("");
      if (r.length > 1) {
        const base = pad.top + ih;
        s.append(svg("path", { class: "area-ontime", d: `${d}L${r[r.length - 1][0].toFixed(1)},${base}L${r[0][0].toFixed(1)},${base}Z` }));
      }
      s.append(svg("path", { class: "line-ontime", d }));
      if (groups.length <= 60) {
        for (const [x, y, g] of r) {
          s.append(svg("circle", { class: "pt", cx: x, cy: y, r: 3 },
            svg("title", {}, `${label(g.key)}: ${Math.round(g.on_time_rate * 100)}% (${g.closed_on_time} of ${g.due} due)`)));
        }
      }
    }
    xLabels(s, groups.map((g) => g.key), xOf, h, w, label);
    return s;
  });
}
