// gankit studio: plain JavaScript, no build step. Each tab talks to the JSON API in app.py.
"use strict";

const $ = (id) => document.getElementById(id);
let RUNS = [];
let SESSION = {rater: null, owner: false};  // this browser's rater id (issued by the server) and owner status

// Every text from the server or the user (run, study and recipe names, metric keys, messages) goes
// into the page as text, never as markup: elements are made here and filled with text nodes, so a
// name such as <img src=x onerror=...> is shown as written and never runs.
function el(tag, props = {}, ...children) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return e;
}

function fillTable(table, head, rows) {
  table.replaceChildren(el("tr", {}, ...head.map((h) => el("th", {}, h))),
                        ...rows.map((cells) => el("tr", {}, ...cells.map((c) => (c instanceof HTMLTableCellElement ? c : el("td", {}, c))))));
}

// The rater token is the server's, in an HttpOnly cookie this script never sees; the first answer
// asks for one. The page shows only the public rater id that answers are recorded under.
async function ensureRater() {
  if (!SESSION.rater) SESSION.rater = (await post("/api/rater", {})).rater;
  showRater();
  return SESSION.rater;
}

function showRater() {
  $("rater").textContent = SESSION.rater || "none yet (one is issued with your first answer)";
}

async function api(path, opts) {
  const res = await fetch(path, opts);
  const body = res.headers.get("content-type")?.includes("json") ? await res.json() : await res.text();
  if (!res.ok) throw new Error((body && body.detail) ? JSON.stringify(body.detail) : res.statusText);
  return body;
}

function post(path, data) {
  return api(path, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(data)});
}

function runByName(name) { return RUNS.find((r) => r.name === name); }

// --- tabs ---------------------------------------------------------------------------------------
function showTab(name) {
  document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("on", b.dataset.tab === name));
  document.querySelectorAll(".tab").forEach((s) => s.classList.toggle("on", s.id === name));
  const start = {gallery: showGallery, explore: updateExplore, monitor: refreshMonitor, compare: showCompare,
                 turing: nextTuring, pair: nextPair, studies: listStudies}[name];
  if (start) start();
}

// --- gallery ------------------------------------------------------------------------------------
function galleryParams() {
  const run = runByName($("g-run").value);
  const p = new URLSearchParams();
  if (run && run.conditional && $("g-label").value !== "") p.set("label", $("g-label").value);
  if (run && run.truncation && $("g-trunc").value !== "1") p.set("truncation", $("g-trunc").value);
  if (run && run.family === "text2image" && $("g-text").value.trim()) p.set("text", $("g-text").value.trim());
  return p;
}

function configureGallery() {
  const run = runByName($("g-run").value);
  $("g-label-box").hidden = !(run && run.conditional);
  $("g-trunc-box").hidden = !(run && run.truncation);
  $("g-text-box").hidden = !(run && run.family === "text2image");
  $("g-say").hidden = !(run && run.family === "speech");
  $("g-scores").hidden = !(run && ANOMALY.includes(run.family));
  if (run && run.conditional) {
    $("g-label").replaceChildren(new Option("all (i mod K)", ""),
      ...Array.from({length: run.n_classes}, (_, k) => new Option(String(k), String(k))));
  }
}

async function showGallery() {
  const name = $("g-run").value;
  if (!name) return;
  configureGallery();
  const box0 = $("g-grid");
  if (runByName(name)?.task) {  // an image-to-image run has no latent space to sample
    box0.textContent = `${name} is an image-to-image run: see its training monitor and eval grid; run it with gankit translate / upscale / inpaint.`;
    return;
  }
  if (ANOMALY.includes(runByName(name)?.family)) {  // a detector: its held-out score histogram
    box0.textContent = `${name} is an anomaly detector: score images with gankit anomaly ${name} IMAGES.`;
    $("g-scores-img").src = `/api/runs/${encodeURIComponent(name)}/scores.png`;
    return;
  }
  const n = Math.max(1, Math.min(256, parseInt($("g-n").value || "32", 10)));
  const seed = Math.max(0, parseInt($("g-seed").value || "0", 10));
  const g = await api(`/api/runs/${encodeURIComponent(name)}/gallery?n=${n}&seed=${seed}`);
  const p = galleryParams();
  const box = $("g-grid");
  box.replaceChildren();
  for (const s of g.seeds) {
    const img = document.createElement("img");
    const q = new URLSearchParams(p);
    q.set("seed", s);
    img.src = `/api/runs/${encodeURIComponent(name)}/sample.png?${q}`;
    img.title = `seed ${s}`;
    img.dataset.seed = s;
    img.className = "sample";
    img.addEventListener("click", () => selectSample(name, s, img.src));
    box.appendChild(img);
  }
}

const ANOMALY = ["ganomaly", "fanogan"];

function sayIt() {  // a speech run: play the words it is asked to say
  const name = $("g-run").value;
  const q = new URLSearchParams({text: $("g-say-text").value.trim() || "one", seed: $("g-seed").value || "0"});
  $("g-audio").src = `/api/runs/${encodeURIComponent(name)}/say.wav?${q}`;
  $("g-audio").play().catch(() => {});  // autoplay may be refused; the controls stay
}

function selectSample(name, seed, src) {
  $("g-detail").hidden = false;
  $("g-big").src = src.replace("scale=4", "") + "&scale=8";
  $("g-d-run").textContent = name;
  $("g-d-seed").textContent = seed;
  $("g-d-label").textContent = $("g-label").value !== "" ? `class ${$("g-label").value}` : "";
  $("g-d-download").href = src;
  $("g-d-download").download = `${name}-seed${seed}.png`;
  $("g-d-explore").onclick = () => {
    $("e-run").value = name;
    $("e-a").value = seed;
    $("e-b").value = seed + 1;
    showTab("explore");
  };
}

// --- latent explorer ----------------------------------------------------------------------------
function updateExplore() {
  const name = $("e-run").value;
  if (!name) return;
  const a = $("e-a").value, b = $("e-b").value, mode = $("e-mode").value, t = parseFloat($("e-t").value);
  const base = `/api/runs/${encodeURIComponent(name)}`;
  $("e-t-val").textContent = t.toFixed(2);
  $("e-img").src = `${base}/interp.png?a=${a}&b=${b}&t=${t}&mode=${mode}`;
  $("e-img-a").src = `${base}/sample.png?seed=${a}`;
  $("e-img-b").src = `${base}/sample.png?seed=${b}`;
  $("e-gif").href = `${base}/interp.gif?a=${a}&b=${b}&mode=${mode}&steps=16`;
}

// --- training monitor ---------------------------------------------------------------------------
function plot(canvas, series, colors) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, pad = 36;
  ctx.clearRect(0, 0, W, H);
  const pts = series.flat().filter((p) => Number.isFinite(p[1]));
  if (!pts.length) { ctx.fillText("no log rows yet", pad, H / 2); return; }
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs) || 1, y0 = Math.min(...ys), y1 = Math.max(...ys);
  const sx = (x) => pad + (x - x0) / ((x1 - x0) || 1) * (W - 2 * pad);
  const sy = (y) => H - pad - (y - y0) / ((y1 - y0) || 1) * (H - 2 * pad);
  ctx.strokeStyle = "#888";
  ctx.strokeRect(pad, pad, W - 2 * pad, H - 2 * pad);
  ctx.fillStyle = "#444";
  ctx.fillText(y1.toPrecision(3), 2, pad + 4);
  ctx.fillText(y0.toPrecision(3), 2, H - pad);
  ctx.fillText(`step ${x0}`, pad, H - 8);
  ctx.fillText(`${x1}`, W - pad - 30, H - 8);
  series.forEach((s, i) => {
    ctx.strokeStyle = colors[i];
    ctx.beginPath();
    s.filter((p) => Number.isFinite(p[1])).forEach((p, j) => (j ? ctx.lineTo(sx(p[0]), sy(p[1])) : ctx.moveTo(sx(p[0]), sy(p[1]))));
    ctx.stroke();
  });
}

let monitorTimer = null;
async function refreshMonitor() {
  const name = $("m-run").value;
  if (!name || !$("monitor").classList.contains("on")) return;
  const log = await api(`/api/runs/${encodeURIComponent(name)}/log`);
  plot($("m-loss"), [log.rows.map((r) => [r.step, r.d_loss]), log.rows.map((r) => [r.step, r.g_loss])], ["#c33", "#36c"]);
  plot($("m-ips"), [log.rows.map((r) => [r.step, r.images_per_s])], ["#393"]);
  const info = log.info || {};
  $("m-info").textContent = `${info.recipe || ""} · ${log.rows.length ? "step " + log.rows[log.rows.length - 1].step : "no steps logged"}` +
    (info.precision ? ` · ${info.precision} on ${info.device}` : "");
  const slider = $("m-step");
  const atEnd = parseInt(slider.value, 10) >= parseInt(slider.max, 10);
  slider.max = Math.max(0, log.grids.length - 1);
  if (atEnd) slider.value = slider.max;  // follow the newest grid unless the user went back
  showGrid(name, log.grids);
  const scores = Object.entries(log.eval).filter(([, v]) => typeof v === "number");
  $("m-eval").textContent = scores.length ? "eval.json\n" + scores.map(([k, v]) => `${k}: ${v.toPrecision(4)}`).join("\n")
                                          : "no eval.json yet (gankit eval RUN)";
  clearTimeout(monitorTimer);
  monitorTimer = setTimeout(refreshMonitor, 5000);  // refreshes while the run trains
}

function showGrid(name, grids) {
  const i = parseInt($("m-step").value, 10);
  if (!grids.length) { $("m-step-name").textContent = "no sample grids"; return; }
  $("m-grid").src = `/api/runs/${encodeURIComponent(name)}/grids/${encodeURIComponent(grids[i])}`;
  $("m-step-name").textContent = grids[i];
  $("m-step").oninput = () => showGrid(name, grids);
}

// --- compare ------------------------------------------------------------------------------------
async function showCompare() {
  const c = await api("/api/compare");
  const names = Object.keys(c.runs);
  const rows = c.metrics.map((m) => [m, ...names.map((n) => {
    const v = c.runs[n][m];
    return typeof v === "number" ? v.toPrecision(4) : "–";
  })]);
  fillTable($("c-table"), ["metric", ...names],
            rows.length ? rows : [[el("td", {colSpan: names.length + 1}, "no eval.json in these runs")]]);
  $("c-table").append(el("tr", {}, ...["run", "recipe", "model", "step"].map((h) => el("th", {}, h))),
                      ...RUNS.map((r) => el("tr", {}, ...[r.name, r.recipe, r.model, String(r.step)].map((t) => el("td", {}, t)))));
}

// --- Turing test --------------------------------------------------------------------------------
let turingItem = null, turingShown = 0, turingAnswered = 0;
// Answer buttons stay disabled from a click until the next item's image has loaded: a quick second
// click must never answer for an image the rater has not seen (or be silently dropped).
function setAnswerable(ids, on) { ids.forEach((id) => ($(id).disabled = !on)); }

async function showImages(pairs) {
  pairs.forEach(([id, src]) => ($(id).src = src));
  await Promise.all(pairs.map(([id]) => $(id).decode().catch(() => {})));
}

async function nextTuring() {
  setAnswerable(["t-real", "t-fake"], false);
  await ensureRater();
  const item = await api("/api/turing/next");
  await showImages([["t-img", `/api/items/${item.token}/image.png`]]);
  turingItem = item;
  turingShown = performance.now();
  setAnswerable(["t-real", "t-fake"], true);
  showTuringResults();
}

async function answerTuring(answer) {
  if (!turingItem) return;
  const item = turingItem;
  turingItem = null;
  setAnswerable(["t-real", "t-fake"], false);
  const r = await post("/api/votes", {token: item.token, answer, ms: Math.round(performance.now() - turingShown)});
  turingAnswered += 1;
  $("t-feedback").textContent = `It was ${r.was}. (${turingAnswered} answered)`;
  $("t-score").textContent = `${turingAnswered} answered`;
  await nextTuring();
}

async function showTuringResults() {
  const r = await api("/api/turing/results");
  const fmt = (p, ci) => Number.isFinite(p) ? `${(100 * p).toFixed(1)} % [${(100 * ci[0]).toFixed(1)}, ${(100 * ci[1]).toFixed(1)}]` : "–";
  fillTable($("t-results"), ["run", "generated shown", "fool rate (95 % CI)", "real shown", "real judged real"],
    Object.entries(r.runs).map(([n, d]) => [n, String(d.fake_n), fmt(d.fool_rate, d.fool_rate_95), String(d.real_n),
                                             fmt(d.real_judged_real, d.real_judged_real_95)]));
}

// --- pairwise preference ------------------------------------------------------------------------
let pairItem = null, pairVotes = 0;
async function nextPair() {
  setAnswerable(["p-a", "p-b"], false);
  try {
    await ensureRater();
    pairItem = await api("/api/pair/next");
  } catch (e) {
    $("p-count").textContent = e.message;
    return;
  }
  const item = pairItem;
  pairItem = null;
  await showImages([["p-img-a", `/api/items/${item.token}/a.png`], ["p-img-b", `/api/items/${item.token}/b.png`]]);
  pairItem = item;
  setAnswerable(["p-a", "p-b"], true);
  showPairResults();
}

async function votePair(answer) {
  if (!pairItem) return;
  const item = pairItem;
  pairItem = null;
  setAnswerable(["p-a", "p-b"], false);
  await post("/api/votes", {token: item.token, answer});
  pairVotes += 1;
  $("p-count").textContent = `${pairVotes} votes`;
  await nextPair();
}

async function showPairResults() {
  const r = await api("/api/pair/results");
  const ci = (x) => Number.isFinite(x) ? x.toFixed(2) : "–";
  fillTable($("p-results"), ["run", "wins / comparisons", "log-strength (95 % CI)"],
    Object.entries(r.runs).map(([n, d]) => [n, `${d.wins} / ${d.comparisons}`,
                                             `${d.bt_log_strength.toFixed(2)} [${ci(d.bt_95[0])}, ${ci(d.bt_95[1])}]`]));
}

// --- user studies -------------------------------------------------------------------------------
// Anyone can take part; creating and closing a study, its results and its CSV are the owner's.
async function listStudies() {
  $("s-new").hidden = !SESSION.owner;
  $("s-owner-note").hidden = SESSION.owner;
  const list = await api("/api/studies");
  const button = (text, onclick) => el("button", {onclick}, text);
  fillTable($("s-list"), ["study", "kind", "items", "votes", "raters", ""], list.map((s) => [
    s.name, s.kind, String(s.n_items), String(s.votes), String(s.raters),
    el("td", {}, s.closed ? "closed " : button("take part", () => openStudy(s.id)), " ",
       ...(SESSION.owner ? [el("a", {href: `/api/studies/${s.id}/export.csv`}, "CSV"), " ",
                            button("results", () => studyResults(s.id)), " ",
                            !s.closed && button("close", async () => {
                              await post(`/api/studies/${s.id}/close`, {});
                              listStudies();
                            })] : [])),
  ]));
}

async function studyResults(id) {
  $("s-run").hidden = false;
  $("s-results").textContent = JSON.stringify(await api(`/api/studies/${id}/results`), null, 1);
}

async function openStudy(id) {
  const s = await api(`/api/studies/${id}`);
  $("s-run").hidden = false;
  $("s-title").textContent = `${s.name} (${s.kind})`;
  $("s-results").textContent = "";
  if (!s.consented) {
    $("s-consent-box").hidden = false;
    $("s-consent-text").textContent = s.consent;
    $("s-item").replaceChildren();
    $("s-agree").onclick = async () => {
      SESSION.rater = (await post(`/api/studies/${id}/consent`, {})).rater;  // issues a rater token if none yet
      showRater();
      $("s-consent-box").hidden = true;
      openStudy(id);
    };
    return;
  }
  $("s-consent-box").hidden = true;
  await ensureRater();
  const it = await api(`/api/studies/${id}/next`);
  $("s-progress").textContent = `${s.answered ?? 0} of ${s.n_items} answered`;
  if (it.done) {
    $("s-item").replaceChildren(el("p", {}, "Done — thank you."));
    listStudies();
    return;
  }
  const answer = (a) => async () => {
    await post("/api/votes", {token: it.token, answer: a});
    openStudy(id);
  };
  const src = (side) => `/api/items/${encodeURIComponent(it.token)}/${side}.png`;
  if (it.kind === "turing") {
    $("s-item").replaceChildren(el("div", {className: "ask"},
      el("img", {src: src("image"), alt: "real or generated?"}),
      el("div", {}, el("button", {className: "answer", onclick: answer("real")}, "Real"),
                    el("button", {className: "answer", onclick: answer("fake")}, "Generated"))));
  } else {
    $("s-item").replaceChildren(el("div", {className: "pair"},
      el("button", {className: "pick", onclick: answer("a")}, el("img", {src: src("a"), alt: "left"})),
      el("button", {className: "pick", onclick: answer("b")}, el("img", {src: src("b"), alt: "right"}))));
  }
}

async function createStudy() {
  $("s-error").textContent = "";
  try {
    await post("/api/studies", {name: $("s-name").value, kind: $("s-kind").value,
                                n_items: parseInt($("s-n").value, 10), consent: $("s-consent").value});
  } catch (e) {
    $("s-error").textContent = e.message;  // shown on the page: a dialog would block the owner's tab
  }
  listStudies();
}

// The owner link gankit serve prints ends in #owner=TOKEN: a fragment never reaches a server log
// or a Referer. The page hands the token to the server once, which answers with an HttpOnly
// cookie, and takes it out of the address bar.
async function ownerLink() {
  const m = location.hash.match(/^#owner=([A-Za-z0-9_-]+)$/);
  if (!m) return;
  history.replaceState(null, "", location.pathname + location.search);
  try {
    await post("/api/owner", {token: m[1]});
  } catch (e) {
    $("who").textContent = `owner link refused: ${e.message}`;
  }
}

// --- start --------------------------------------------------------------------------------------
async function start() {
  await ownerLink();
  SESSION = await api("/api/session");
  showRater();
  if (SESSION.owner) $("who").textContent = "owner: you can create and close studies";
  RUNS = await api("/api/runs");
  document.querySelectorAll(".run-select").forEach((s) => s.replaceChildren(
    ...RUNS.map((r) => new Option(`${r.name} (${r.recipe}, step ${r.step})`, r.name))));
  document.querySelectorAll("#tabs button").forEach((b) => (b.onclick = () => showTab(b.dataset.tab)));
  $("g-go").onclick = showGallery;
  $("g-run").onchange = showGallery;
  $("g-text").onchange = showGallery;
  $("g-say-go").onclick = sayIt;
  ["e-run", "e-a", "e-b", "e-mode"].forEach((id) => ($(id).onchange = updateExplore));
  $("e-t").oninput = updateExplore;
  $("m-run").onchange = refreshMonitor;
  $("t-real").onclick = () => answerTuring("real");
  $("t-fake").onclick = () => answerTuring("fake");
  $("p-a").onclick = () => votePair("a");
  $("p-b").onclick = () => votePair("b");
  $("s-create").onclick = createStudy;
  document.body.dataset.ready = "1";
  showGallery();
}

start();
