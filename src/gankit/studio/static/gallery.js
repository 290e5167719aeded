// gankit studio: the gallery (one image per seed, with the command that draws it again) and the
// latent explorer (a path between two seeds' latents).
"use strict";

const runUrl = (name) => `/api/runs/${encodeURIComponent(name)}`;

function setupGallery() {
  // route() shows the open tab again, its failures in the tab's message line
  $("g-go").onclick = route;
  $("g-text").onchange = route;
  $("g-label").onchange = route;
  $("g-say-go").onclick = sayIt;
  $("g-d-copy").onclick = () => navigator.clipboard.writeText($("g-d-command").textContent)
    .then(() => ($("g-d-copy").textContent = "Copied"), () => ($("g-d-copy").textContent = "Select and copy"));
  ["e-a", "e-b", "e-mode", "e-label"].forEach((id) => ($(id).onchange = route));
  $("e-t").oninput = SHOW.explore;
}

// The query of a sample's image: the class, truncation and caption chosen for the run.
function galleryParams() {
  const run = runByName($("g-run").value);
  const p = new URLSearchParams();
  if (run && run.conditional && $("g-label").value !== "") p.set("label", $("g-label").value);
  if (run && run.truncation && $("g-trunc").value !== "1") p.set("truncation", $("g-trunc").value);
  if (run && run.family === "text2image" && $("g-text").value.trim()) p.set("text", $("g-text").value.trim());
  return p;
}

function classOptions(select, run, first) {
  const keep = select.value;
  select.replaceChildren(new Option(first, ""),
    ...Array.from({length: run.n_classes}, (_, k) => new Option(String(k), String(k))));
  if (keep !== "" && keep < run.n_classes) select.value = keep;
}

function configureGallery(run) {
  $("g-label-box").hidden = !run.conditional;
  $("g-trunc-box").hidden = !run.truncation;
  $("g-text-box").hidden = run.family !== "text2image";
  $("g-say").hidden = run.family !== "speech";
  $("g-scores").hidden = !run.detector;
  if (run.conditional) classOptions($("g-label"), run, "seed mod K (0, 1, 2, …)");
}

SHOW.gallery = async function showGallery() {
  const name = $("g-run").value;
  const run = runByName(name);
  const box = $("g-grid");
  box.replaceChildren();
  clearDetail();
  if (!run) {
    say("gallery-msg", "This studio serves no runs.");
    return;
  }
  configureGallery(run);
  if (run.task) {  // an image-to-image run has no latent space to sample
    say("gallery-msg", `${name} is an image-to-image run: see its training monitor and eval grid; run it with gankit translate / upscale / inpaint.`);
    return;
  }
  if (run.detector) {  // a detector: its held-out score histogram
    say("gallery-msg", `${name} is an anomaly detector: score images with gankit anomaly ${run.cli} IMAGES.`);
    $("g-scores-img").src = `${runUrl(name)}/scores.png`;
    return;
  }
  if (!sampleable(run)) {
    say("gallery-msg", `${name} makes points, not images: its training monitor shows them.`);
    return;
  }
  const n = Math.max(1, Math.min(256, parseInt($("g-n").value || "32", 10)));
  const seed = Math.max(0, parseInt($("g-seed").value || "0", 10));
  const g = await api(`${runUrl(name)}/gallery?n=${n}&seed=${seed}`);
  const p = galleryParams();
  for (const s of g.seeds) {
    const q = new URLSearchParams(p);
    q.set("seed", s);
    const img = el("img", {src: `${runUrl(name)}/sample.png?${q}`, className: "sample", alt: `seed ${s}`});
    img.dataset.seed = s;
    const tile = el("figure", {className: "tile", title: `seed ${s}: click for the command that draws it`},
                    img, el("figcaption", {}, `seed ${s}`));
    tile.addEventListener("click", guarded("gallery", () => selectSample(name, s, q, tile)));
    box.append(tile);
  }
};

function sayIt() {  // a speech run: play the words it is asked to say
  const name = $("g-run").value;
  const q = new URLSearchParams({text: $("g-say-text").value.trim() || "one", seed: $("g-seed").value || "0"});
  $("g-audio").src = `${runUrl(name)}/say.wav?${q}`;
  $("g-audio").play().catch(() => {});  // autoplay may be refused; the controls stay
}

function clearDetail() {
  $("g-detail").hidden = true;
  $("g-hint").hidden = false;
}

// The selected sample, large, with its seed, class and the `gankit sample` command that draws the
// same image (the server spells it: the run's path, --seeds N, the class the studio used).
async function selectSample(name, seed, q, tile) {
  document.querySelectorAll("#g-grid .tile.on").forEach((t) => t.classList.remove("on"));
  tile.classList.add("on");
  const info = await api(`${runUrl(name)}/sample.json?${q}`);
  const big = new URLSearchParams(q);
  big.set("scale", "8");
  $("g-big").src = `${runUrl(name)}/sample.png?${big}`;
  $("g-d-run").textContent = name;
  $("g-d-seed").textContent = String(seed);
  $("g-d-label").textContent = info.label !== null ? `, class ${info.label}` : "";
  $("g-d-command").textContent = info.command;
  $("g-d-copy").textContent = "Copy";
  $("g-d-download").href = `${runUrl(name)}/sample.png?${q}`;
  $("g-d-download").download = `${name}-seed-${seed}.png`;
  $("g-d-explore").onclick = () => {
    $("e-run").value = name;
    $("e-a").value = seed;
    $("e-b").value = seed + 1;
    $("e-label").value = $("g-label").value;
    showTab("explore");
  };
  $("g-hint").hidden = true;
  $("g-detail").hidden = false;
}

// --- latent explorer ----------------------------------------------------------------------------
// A conditional run interpolates within one class: the one chosen, else seed A's (A mod K), so that
// the left end is seed A's gallery image.
SHOW.explore = function updateExplore() {
  const name = $("e-run").value;
  const run = runByName(name);
  const ok = sampleable(run);
  $("e-view").hidden = !ok;
  say("explore-msg", ok ? "" : run ? `${name} does not draw images from noise: there is no latent space to explore.`
                                   : "This studio serves no runs.");
  if (!ok) return;
  $("e-label-box").hidden = !run.conditional;
  if (run.conditional) classOptions($("e-label"), run, "seed A's (A mod K)");
  const a = Math.max(0, parseInt($("e-a").value || "0", 10)), b = Math.max(0, parseInt($("e-b").value || "0", 10));
  const mode = $("e-mode").value, t = parseFloat($("e-t").value);
  const q = (more) => {
    const p = new URLSearchParams(more);
    if (run.conditional) p.set("label", $("e-label").value !== "" ? $("e-label").value : String(a % run.n_classes));
    return p;
  };
  $("e-t-val").textContent = t.toFixed(2);
  $("e-img").src = `${runUrl(name)}/interp.png?${q({a, b, t, mode})}`;
  $("e-img-a").src = `${runUrl(name)}/sample.png?${q({seed: a})}`;
  $("e-img-b").src = `${runUrl(name)}/sample.png?${q({seed: b})}`;
  $("e-a-cap").textContent = `seed A = ${a}`;
  $("e-b-cap").textContent = `seed B = ${b}`;
  $("e-gif").href = `${runUrl(name)}/interp.gif?${q({a, b, mode, steps: 16})}`;
};
