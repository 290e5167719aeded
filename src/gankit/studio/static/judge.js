// gankit studio: human evaluation. The open Turing test and preference votes, and user studies
// (fixed item sets with a consent note, created and read out by the studio's owner).
"use strict";

function setupJudging() {
  $("t-real").onclick = guarded("turing", () => answerTuring("real"));
  $("t-fake").onclick = guarded("turing", () => answerTuring("fake"));
  $("p-a").onclick = guarded("preference", () => votePair("a"));
  $("p-b").onclick = guarded("preference", () => votePair("b"));
  $("s-create").onclick = guarded("studies", createStudy);
  const pairwise = $("s-kind").querySelector("option[value=pairwise]");
  if (RUNS.filter(sampleable).length < 2) {
    pairwise.disabled = true;
    pairwise.textContent = "pairwise preference (needs two runs)";
  }
}

// Answer buttons stay disabled from a click until the next item's image has loaded: a quick second
// click must never answer for an image the rater has not seen (or be silently dropped).
function setAnswerable(ids, on) { ids.forEach((id) => ($(id).disabled = !on)); }

async function showImages(pairs) {
  pairs.forEach(([id, src]) => ($(id).src = src));
  await Promise.all(pairs.map(([id]) => $(id).decode().catch(() => {})));
}

const pct = (p, ci) => Number.isFinite(p) ? `${(100 * p).toFixed(1)} % [${(100 * ci[0]).toFixed(1)}, ${(100 * ci[1]).toFixed(1)}]` : "–";

// --- Turing test --------------------------------------------------------------------------------
let turingItem = null, turingShown = 0, turingAnswered = 0;

SHOW.turing = async function nextTuring() {
  setAnswerable(["t-real", "t-fake"], false);
  const n = RUNS.filter(sampleable).length;
  $("t-view").hidden = !n;
  if (!n) {
    say("turing-msg", "The Turing test shows images generated from noise beside real ones; none of the runs served " +
                      "here draws images from noise (they make points, map images or detect anomalies).");
    return;
  }
  await ensureRater();
  const item = await api("/api/turing/next");
  await showImages([["t-img", `/api/items/${item.token}/image.png`]]);
  turingItem = item;
  turingShown = performance.now();
  setAnswerable(["t-real", "t-fake"], true);
  await showTuringResults();
};

async function answerTuring(answer) {
  if (!turingItem) return;
  const item = turingItem;
  turingItem = null;
  setAnswerable(["t-real", "t-fake"], false);
  const r = await post("/api/votes", {token: item.token, answer, ms: Math.round(performance.now() - turingShown)});
  turingAnswered += 1;
  $("t-feedback").textContent = `It was ${r.was === "fake" ? "generated" : "real"}.`;
  $("t-score").textContent = `${turingAnswered} answered`;
  await SHOW.turing();
}

async function showTuringResults() {
  turingTable($("t-results"), await api("/api/turing/results"));
}

function turingTable(table, r) {
  fillTable(table, ["run", "generated shown", "fool rate (95 % CI)", "real shown", "real judged real"],
    Object.entries(r.runs).map(([n, d]) => [n, String(d.fake_n), pct(d.fool_rate, d.fool_rate_95), String(d.real_n),
                                             pct(d.real_judged_real, d.real_judged_real_95)]),
    "No answers yet: each answer adds to its run's row.");
}

// --- pairwise preference ------------------------------------------------------------------------
let pairItem = null, pairVotes = 0;

SHOW.preference = async function nextPair() {
  setAnswerable(["p-a", "p-b"], false);
  const runs = RUNS.filter(sampleable);
  $("p-view").hidden = runs.length < 2;
  if (runs.length < 2) {  // nothing to compare: say why, and how to get there
    say("preference-msg", `Preference votes compare two runs: each question shows one image from each of two runs ` +
        `and asks which looks better. This studio serves ${runs.length ? "one run that draws images (" + runs[0].name + ")" : "no run that draws images"}; ` +
        `start it with two or more, e.g. gankit serve runs/a runs/b.`);
    return;
  }
  await ensureRater();
  const item = await api("/api/pair/next");
  await showImages([["p-img-a", `/api/items/${item.token}/a.png`], ["p-img-b", `/api/items/${item.token}/b.png`]]);
  pairItem = item;
  setAnswerable(["p-a", "p-b"], true);
  await showPairResults();
};

async function votePair(answer) {
  if (!pairItem) return;
  const item = pairItem;
  pairItem = null;
  setAnswerable(["p-a", "p-b"], false);
  await post("/api/votes", {token: item.token, answer});
  pairVotes += 1;
  $("p-count").textContent = `${pairVotes} vote${pairVotes === 1 ? "" : "s"}`;
  await SHOW.preference();
}

async function showPairResults() {
  pairTable($("p-results"), await api("/api/pair/results"));
}

function pairTable(table, r) {
  const ci = (x) => Number.isFinite(x) ? x.toFixed(2) : "–";
  const voted = Object.entries(r.runs).filter(([, d]) => d.comparisons);
  fillTable(table, ["run", "wins / comparisons", "log-strength (95 % CI)"],
    voted.map(([n, d]) => [n, `${d.wins} / ${d.comparisons}`,
                           `${d.bt_log_strength.toFixed(2)} [${ci(d.bt_95[0])}, ${ci(d.bt_95[1])}]`]),
    "No votes yet.");
}

// --- user studies -------------------------------------------------------------------------------
// Anyone can take part; creating and closing a study, its results and its CSV are the owner's.
SHOW.studies = async function listStudies() {
  $("s-new").hidden = !SESSION.owner;
  $("s-owner-note").hidden = SESSION.owner;
  const list = await api("/api/studies");
  const button = (text, onclick) => el("button", {onclick}, text);
  fillTable($("s-list"), ["study", "kind", "items", "votes", "raters", ""], list.map((s) => [
    s.name, s.kind, String(s.n_items), String(s.votes), String(s.raters),
    el("td", {}, s.closed ? "closed " : button("take part", guarded("studies", () => openStudy(s.id))), " ",
       ...(SESSION.owner ? [el("a", {href: `/api/studies/${s.id}/export.csv`}, "CSV"), " ",
                            button("results", guarded("studies", () => studyResults(s.id))), " ",
                            !s.closed && button("close", guarded("studies", async () => {
                              await post(`/api/studies/${s.id}/close`, {});
                              await SHOW.studies();
                            }))] : [])),
  ]), SESSION.owner ? "No studies yet: create one above." : "No studies yet.");
};

async function studyResults(id) {
  const r = await api(`/api/studies/${id}/results`);
  const table = el("table");
  (r.kind === "turing" ? turingTable : pairTable)(table, r);
  $("s-run").hidden = false;
  $("s-results").replaceChildren(el("h4", {}, `Results of ${r.study.name}: ${r.votes} votes from ${r.study.raters} raters`),
                                 table, el("p", {className: "note"}, r.note));
}

async function openStudy(id) {
  const s = await api(`/api/studies/${id}`);
  $("s-run").hidden = false;
  $("s-title").textContent = `${s.name} (${s.kind})`;
  $("s-results").replaceChildren();
  if (!s.consented) {
    $("s-consent-box").hidden = false;
    $("s-consent-text").textContent = s.consent;
    $("s-item").replaceChildren();
    $("s-agree").onclick = guarded("studies", async () => {
      SESSION.rater = (await post(`/api/studies/${id}/consent`, {})).rater;  // issues a rater token if none yet
      showRater();
      $("s-consent-box").hidden = true;
      await openStudy(id);
    });
    return;
  }
  $("s-consent-box").hidden = true;
  await ensureRater();
  const it = await api(`/api/studies/${id}/next`);
  $("s-progress").textContent = `${s.answered ?? 0} of ${s.n_items} answered`;
  if (it.done) {
    $("s-item").replaceChildren(el("p", {}, "Done — thank you."));
    SHOW.studies();
    return;
  }
  const answer = (a) => guarded("studies", async () => {
    await post("/api/votes", {token: it.token, answer: a});
    await openStudy(id);
  });
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
  say("s-error", "");
  try {
    await post("/api/studies", {name: $("s-name").value, kind: $("s-kind").value,
                                n_items: parseInt($("s-n").value, 10), consent: $("s-consent").value});
  } catch (e) {
    say("s-error", e.message);  // shown on the page: a dialog would block the owner's tab
  }
  SHOW.studies();
}
