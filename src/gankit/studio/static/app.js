// gankit studio: plain JavaScript, no build step, one script per part of the page, all from /static
// (the Content-Security-Policy allows nothing else): app.js (helpers, tabs and their URLs, start),
// gallery.js (gallery and latent explorer), monitor.js (training monitor), judge.js (Turing test,
// preference, user studies). Each tab talks to the JSON API in app.py.
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

function fillTable(table, head, rows, empty = "") {
  const body = rows.length || !empty ? rows : [[el("td", {colSpan: head.length, className: "note"}, empty)]];
  table.replaceChildren(el("tr", {}, ...head.map((h) => el("th", {}, h))),
                        ...body.map((cells) => el("tr", {}, ...cells.map((c) => (c instanceof HTMLTableCellElement ? c : el("td", {}, c))))));
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

// An error answer's message, as a sentence: FastAPI's detail is a string, or for a malformed request
// a list of {loc, msg}; never the JSON itself.
function errorText(body, res) {
  const d = body && body.detail;
  if (typeof d === "string") return d;
  if (Array.isArray(d)) return d.map((e) => `${(e.loc || []).slice(1).join(".") || "request"}: ${e.msg}`).join("; ");
  return `${res.status} ${res.statusText}`;
}

async function api(path, opts) {
  const res = await fetch(path, opts);
  const body = res.headers.get("content-type")?.includes("json") ? await res.json() : await res.text();
  if (!res.ok) throw new Error(errorText(body, res));
  return body;
}

function post(path, data) {
  return api(path, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(data)});
}

function runByName(name) { return RUNS.find((r) => r.name === name); }

// Runs that draw images from noise: the gallery, explorer, Turing test and preference need one.
function sampleable(run) {
  return !!run && run.shape.length === 3 && !run.task && !run.detector;
}

// A message in a tab's message line (an empty text hides it).
function say(id, text) {
  $(id).textContent = text;
  $(id).hidden = !text;
}

// An event handler that shows its failure in the tab's message line instead of dropping it.
function guarded(tab, fn) {
  return (...args) => Promise.resolve().then(() => fn(...args)).catch((e) => say(`${tab}-msg`, e.message));
}

// --- tabs and their URLs ------------------------------------------------------------------------
// Each tab is a fragment: #gallery, #explore, #monitor, #compare, #turing, #preference, #studies; the
// tabs that show one run name it (#monitor/RUN). Reload, back and forward show the same tab.
const TABS = {gallery: "g-run", explore: "e-run", monitor: "m-run", compare: null, turing: null,
              preference: null, studies: null};
const SHOW = {};  // tab -> what opening it does (filled in by the other scripts)

function tabHash(tab) {
  const sel = TABS[tab] && $(TABS[tab]).value;
  return `#${tab}${sel ? "/" + encodeURIComponent(sel) : ""}`;
}

function parseHash() {
  const [tab, ...rest] = location.hash.slice(1).split("/");
  let run = null;
  try {
    run = rest.length ? decodeURIComponent(rest.join("/")) : null;
  } catch (e) {
    run = null;  // a mangled address: show the tab's first run
  }
  return {tab: Object.hasOwn(TABS, tab) ? tab : "gallery", run};
}

function route() {
  const {tab, run} = parseHash();
  if (run !== null && TABS[tab] && runByName(run)) $(TABS[tab]).value = run;
  if (location.hash !== tabHash(tab)) history.replaceState(null, "", tabHash(tab));  // e.g. "" -> #gallery
  document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("on", b.dataset.tab === tab));
  document.querySelectorAll(".tab").forEach((s) => s.classList.toggle("on", s.id === tab));
  document.title = `gankit studio · ${$("tabs").querySelector(`[data-tab="${tab}"]`).textContent}`;
  // body[data-shown] names the tab once its content is in (the browser tests wait for it)
  const shown = ++route.count;
  delete document.body.dataset.shown;
  say(`${tab}-msg`, "");
  Promise.resolve(SHOW[tab] && SHOW[tab]()).catch((e) => say(`${tab}-msg`, e.message))
    .finally(() => { if (shown === route.count) document.body.dataset.shown = tab; });
}
route.count = 0;

function showTab(tab) {
  const h = tabHash(tab);
  if (location.hash === h) route();
  else location.hash = h;  // a new history entry; hashchange routes
}

// A run chosen in a tab's list becomes part of its address (no new history entry).
function runChosen(tab) {
  history.replaceState(null, "", tabHash(tab));
  route();
}

// The owner link gankit serve prints ends in #owner=TOKEN: a fragment never reaches a server log
// or a Referer. The page hands the token to the server once, which answers with an HttpOnly
// cookie, and takes it out of the address bar before the tabs use the fragment.
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
  for (const [tab, id] of Object.entries(TABS)) if (id) $(id).onchange = () => runChosen(tab);
  for (const setup of [setupGallery, setupMonitor, setupJudging]) setup();
  window.addEventListener("hashchange", route);
  document.body.dataset.ready = "1";
  route();
}

window.addEventListener("DOMContentLoaded", () => start().catch((e) => say("gallery-msg", `the studio could not start: ${e.message}`)));
