// gankit studio: the training monitor. Every number the run logs (losses, D's outputs, gradient
// norms, learning rates, speed, diversity, periodic evaluations) gets a chart: the raw values faint,
// an exponential moving average on top (the smoothing slider, 0 = raw), the values under the mouse
// beside it. Plain canvas; the log is fetched again every 5 s while the tab is open. Also the
// comparison of runs (their eval.json metrics).
"use strict";

const MON = {run: null, rows: [], evals: [], warnings: [], timer: null};
const COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

function setupMonitor() {
  $("m-smooth").oninput = () => {
    $("m-smooth-val").textContent = parseFloat($("m-smooth").value).toFixed(2);
    drawCharts();
  };
}

// Keys that differ only in which net (d/g) or which images (real/fake) share a chart:
// d_loss with g_loss, d_real with d_fake, grad_norm_d with grad_norm_g, lr_g with lr_d.
function chartGroups(keys) {
  const groups = new Map();
  for (const k of keys) {
    const pattern = k.split("_").map((t) => (["d", "g"].includes(t) ? "·" : ["real", "fake"].includes(t) ? "◦" : t)).join("_");
    if (!groups.has(pattern)) groups.set(pattern, []);
    groups.get(pattern).push(k);
  }
  return [...groups.values()];
}

function scalarKeys(rows) {
  const keys = [];
  for (const r of rows) for (const k of Object.keys(r)) if (k !== "step" && !keys.includes(k)) keys.push(k);
  return keys;
}

// TensorBoard's smoothing: an exponential moving average, debiased at the start so that the first
// points are not pulled towards 0.
function ema(ys, w) {
  let m = 0, n = 0;
  return ys.map((y) => {
    if (!Number.isFinite(y)) return NaN;
    m = w * m + (1 - w) * y;
    n += 1;
    return m / (1 - w ** n);
  });
}

function fmt(v) {
  if (!Number.isFinite(v)) return "–";
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(2) : String(parseFloat(v.toPrecision(4)));
}

// One chart: {keys, rows, title}; its canvas keeps what hover needs.
function makeChart(keys, rows, title) {
  const canvas = el("canvas", {className: "chart"});
  canvas.dataset.keys = keys.join(" ");
  const legend = el("figcaption", {}, ...keys.flatMap((k, i) => [el("span", {className: "swatch", title: k}, "━ "), k,
                                                                i < keys.length - 1 ? " · " : ""]));
  [...legend.querySelectorAll(".swatch")].forEach((s, i) => (s.style.color = COLORS[i % COLORS.length]));
  const tip = el("div", {className: "tip", hidden: true});
  const fig = el("figure", {className: "chart-box"}, el("div", {className: "chart-title"}, title), canvas, tip, legend);
  const chart = {keys, rows, canvas, tip};
  canvas.addEventListener("mousemove", (e) => hover(chart, e));
  canvas.addEventListener("mouseleave", () => { tip.hidden = true; draw(chart, null); });
  return {fig, chart};
}

function geometry(chart) {
  const W = chart.canvas.clientWidth || 300, H = chart.canvas.clientHeight || 170;
  const left = 52, right = 10, top = 8, bottom = 22;
  const pts = chart.rows.filter((r) => chart.keys.some((k) => Number.isFinite(r[k])));
  const steps = pts.map((r) => r.step);
  const ys = pts.flatMap((r) => chart.keys.map((k) => r[k]).filter(Number.isFinite));
  const x0 = Math.min(...steps), x1 = Math.max(...steps);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y0 === y1) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
  return {W, H, left, right, top, bottom, pts, x0, x1, y0, y1,
          sx: (x) => left + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (W - left - right),
          sy: (y) => top + (1 - (y - y0) / (y1 - y0)) * (H - top - bottom)};
}

function draw(chart, at) {
  const c = chart.canvas, dpr = window.devicePixelRatio || 1;
  const g = geometry(chart);
  c.width = g.W * dpr;
  c.height = g.H * dpr;
  const ctx = c.getContext("2d");
  ctx.scale(dpr, dpr);
  ctx.font = "11px system-ui, sans-serif";
  if (!g.pts.length) { ctx.fillStyle = "#777"; ctx.fillText("no values logged yet", g.left, g.H / 2); return; }
  ctx.strokeStyle = "#e4e4e4";
  ctx.fillStyle = "#555";
  for (const f of [0, 0.5, 1]) {  // three y ticks and the first, middle and last step
    const y = g.y0 + f * (g.y1 - g.y0), py = g.sy(y);
    ctx.beginPath(); ctx.moveTo(g.left, py); ctx.lineTo(g.W - g.right, py); ctx.stroke();
    ctx.textAlign = "right"; ctx.fillText(fmt(y), g.left - 4, py + 4);
    const x = Math.round(g.x0 + f * (g.x1 - g.x0));
    ctx.textAlign = ["left", "center", "right"][2 * f];
    ctx.fillText(f === 0 ? `step ${x}` : String(x), g.sx(x), g.H - 6);
  }
  const w = parseFloat($("m-smooth").value);
  chart.smooth = {};
  chart.keys.forEach((k, i) => {
    const pts = g.pts.filter((r) => Number.isFinite(r[k]));
    const sm = ema(pts.map((r) => r[k]), w);
    chart.smooth[k] = new Map(pts.map((r, j) => [r.step, sm[j]]));
    const line = (ys, alpha, width) => {
      ctx.globalAlpha = alpha; ctx.lineWidth = width; ctx.strokeStyle = COLORS[i % COLORS.length];
      ctx.beginPath();
      pts.forEach((r, j) => (j ? ctx.lineTo(g.sx(r.step), g.sy(ys[j])) : ctx.moveTo(g.sx(r.step), g.sy(ys[j]))));
      ctx.stroke();
      if (pts.length < 3) pts.forEach((r, j) => ctx.fillRect(g.sx(r.step) - 2, g.sy(ys[j]) - 2, 4, 4));
    };
    if (w > 0) line(pts.map((r) => r[k]), 0.25, 1);
    line(sm, 1, 1.5);
  });
  ctx.globalAlpha = 1;
  if (at !== null) {
    ctx.strokeStyle = "#999"; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(g.sx(at.step), g.top); ctx.lineTo(g.sx(at.step), g.H - g.bottom); ctx.stroke();
  }
}

// The logged row nearest the mouse: its step, each key's value and, when smoothing, the average.
function hover(chart, e) {
  const g = geometry(chart);
  if (!g.pts.length) return;
  const x = e.offsetX;
  const at = g.pts.reduce((best, r) => (Math.abs(g.sx(r.step) - x) < Math.abs(g.sx(best.step) - x) ? r : best));
  draw(chart, at);
  const smoothing = parseFloat($("m-smooth").value) > 0;
  chart.tip.replaceChildren(el("b", {}, `step ${at.step}`), ...chart.keys.map((k) => el("div", {},
    `${k}: ${fmt(at[k])}`, smoothing && Number.isFinite(at[k]) ? ` (smoothed ${fmt(chart.smooth[k].get(at.step))})` : "")));
  chart.tip.hidden = false;
  const x0 = chart.canvas.offsetLeft + g.sx(at.step);  // beside the line, on the side with room
  const right = x0 + 10 + chart.tip.offsetWidth <= chart.canvas.offsetLeft + g.W;
  chart.tip.style.left = `${right ? x0 + 10 : Math.max(0, x0 - 10 - chart.tip.offsetWidth)}px`;
}

function drawCharts() {
  MON.charts?.forEach((c) => draw(c, null));
}

function buildCharts() {
  const figs = [], charts = [];
  for (const keys of chartGroups(scalarKeys(MON.rows))) {
    const {fig, chart} = makeChart(keys, MON.rows, keys.join(" · "));
    figs.push(fig);
    charts.push(chart);
  }
  for (const k of scalarKeys(MON.evals)) {  // periodic evaluations: one chart per metric
    const {fig, chart} = makeChart([k], MON.evals, `eval: ${k}`);
    figs.push(fig);
    charts.push(chart);
  }
  $("m-plots").replaceChildren(...figs);
  MON.charts = charts;
  say("monitor-msg", figs.length ? "" : "No log rows yet: the run writes one every train.log_every steps.");
  drawCharts();
}

SHOW.monitor = async function refreshMonitor() {
  const name = $("m-run").value;
  if (!name || !$("monitor").classList.contains("on")) return;
  if (MON.run !== name) Object.assign(MON, {run: name, rows: [], evals: [], warnings: []});
  const last = MON.rows.length ? MON.rows[MON.rows.length - 1].step : -1;
  const log = await api(`${runUrl(name)}/log?after=${last}`);
  if (MON.run !== name) return;  // the user chose another run meanwhile
  MON.rows.push(...log.rows);
  const moreEvals = log.evals.length !== MON.evals.length;
  MON.evals = log.evals;  // sent whole each time (a few rows)
  MON.warnings = log.warnings;
  if (!MON.charts || log.rows.length || moreEvals || !MON.rows.length) buildCharts();
  const info = log.info || {};
  const lastStep = MON.rows.length ? `step ${MON.rows.at(-1).step}${info.steps ? " of " + info.steps : ""}` : "no steps logged";
  $("m-info").textContent = [info.recipe, lastStep, info.precision && `${info.precision} on ${info.device}`,
                             info.status && info.status !== "done" && info.status].filter(Boolean).join(" · ");
  $("m-warnings").replaceChildren(...MON.warnings.map((w) => el("li", {}, `step ${w.step}: ${w.message}`)));
  const slider = $("m-step");
  const atEnd = parseInt(slider.value, 10) >= parseInt(slider.max, 10);
  slider.max = Math.max(0, log.grids.length - 1);
  if (atEnd) slider.value = slider.max;  // follow the newest grid unless the user went back
  showGrid(name, log.grids);
  const scores = Object.entries(log.eval).filter(([, v]) => typeof v === "number");
  $("m-eval").textContent = scores.length ? "eval.json\n" + scores.map(([k, v]) => `${k}: ${fmt(v)}`).join("\n")
                                          : `no eval.json yet (gankit eval ${runByName(name)?.cli ?? name} writes one)`;
  clearTimeout(MON.timer);
  MON.timer = setTimeout(() => SHOW.monitor().catch(() => {}), 5000);  // follows a run still training
};

function showGrid(name, grids) {
  const i = parseInt($("m-step").value, 10);
  $("m-grid-box").hidden = !grids.length;
  if (!grids.length) {
    $("m-step-name").textContent = "no sample grids yet (train.sample_every)";
    return;
  }
  const src = `${runUrl(name)}/grids/${encodeURIComponent(grids[i])}`;
  if (!$("m-grid").src.endsWith(src)) $("m-grid").src = src;
  $("m-step-name").textContent = grids[i];
  $("m-step").oninput = () => showGrid(name, grids);
}

// --- compare ------------------------------------------------------------------------------------
SHOW.compare = async function showCompare() {
  const c = await api("/api/compare");
  const names = Object.keys(c.runs);
  fillTable($("c-table"), ["metric", ...names],
            c.metrics.map((m) => [m, ...names.map((n) => fmt(c.runs[n][m]))]),
            `No run here has an eval.json yet: gankit eval ${RUNS[0]?.cli ?? "RUN"} writes one.`);
  $("c-runs").replaceChildren(el("tr", {}, ...["run", "recipe", "model", "step", "family"].map((h) => el("th", {}, h))),
                              ...RUNS.map((r) => el("tr", {}, ...[r.name, r.recipe, r.model, String(r.step), r.family]
                                                                    .map((t) => el("td", {}, t)))));
};
