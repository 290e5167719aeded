"""Model cards: a short one in every run folder (MODEL_CARD.md: what the model is, what it was
trained on, how it scored, and that its images are generated; the seeds' ethics section), and
the README.md of an export folder (`hub_card`), with front matter the Hugging Face Hub reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

INTENDED_USE = """## Intended use and limits
For research and teaching on generative models. Samples imitate the training data and can
reproduce its biases or, for small data sets, near-copies of training examples; they are not
real observations. Do not present them as real.
"""


def write_card(run: Path) -> Path:
    """(Re)write run/MODEL_CARD.md from the run's own files (config, log, eval.json)."""
    run = Path(run)
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if x.strip()] \
        if (run / "log.jsonl").exists() else []
    start = next((r for r in rows if r.get("event") == "start"), {})
    end = next((r for r in reversed(rows) if r.get("event") == "end"), {})
    scores: dict[str, Any] = {}
    if (run / "eval.json").exists():
        try:
            scores = json.loads((run / "eval.json").read_text())
        except ValueError:
            scores = {}
    metric_lines = [f"  - `{k}`: {v:.4g}" for k, v in scores.items() if isinstance(v, (int, float))][:12]
    text = f"""# Model card: {run.name}

- **Model**: generative adversarial network, recipe `{start.get('recipe', '?')}`, architecture hash
  `{start.get('model_hash', '?')}` (full configuration in `config.yaml`).
- **Training data**: `{start.get('data', '?')}`, {start.get('n_data', '?')} examples of shape {start.get('shape', '?')}.
- **Training**: {end.get('step', '?')} steps, {end.get('seconds', '?')} s, {start.get('precision', 'fp32')} on
  {start.get('device', 'cpu')} ({start.get('processes', 1)} process(es)); gankit's log is `log.jsonl`.
- **Evaluation** (`gankit eval`, protocol in each name):
{chr(10).join(metric_lines) if metric_lines else "  - not evaluated yet (run `gankit eval` on this folder)"}

{INTENDED_USE}
## Provenance
Every PNG that gankit writes from this model (`gankit sample`, the studio, sample grids) carries
text chunks `gankit:generated=true`, `gankit:model_hash` and `gankit:seed` (a grid: `gankit:seeds`, in
grid order).
"""
    path = run / "MODEL_CARD.md"
    path.write_text(text)
    return path


# Hugging Face Hub datasets for gankit's built-in data (all drawn from MNIST); folders of the
# user's own images and the 2-D toys have no Hub id and are named in the card's text only
HUB_DATASETS = {name: "ylecun/mnist" for name in ("mnist5k", "stacked_mnist", "edges2digits", "thin2thick",
                                                   "lowres4_mnist")}


def _hub_task(meta: dict[str, Any]) -> tuple[str, str | None]:
    """(model-index task type, Hub pipeline_tag or None): the pipeline tag only where the Hub has one
    that fits (the Hub checks pipeline tags against its list; a model-index task type is free text)."""
    if meta.get("captioned"):
        return "text-to-image", "text-to-image"
    if meta.get("task"):
        return "image-to-image", "image-to-image"
    if meta.get("family") == "speech":
        return "text-to-speech", "text-to-speech"
    if len(meta.get("shape", [])) != 3:
        return "2d-point-generation", None
    if meta.get("conditional"):
        return "class-conditional-image-generation", None
    return "unconditional-image-generation", "unconditional-image-generation"


def hub_card(meta: dict[str, Any], name: str) -> str:
    """An export folder's README.md (`gankit export`): YAML front matter the Hugging Face Hub reads
    (library_name, license, tags, datasets, pipeline_tag, model-index with the run's eval.json
    scores under their protocol names) and the card's text with a usage snippet. `meta` is the
    export's config.json; `name` the folder's name."""
    import yaml

    task, pipeline = _hub_task(meta)
    source = str(meta.get("data", {}).get("source", ""))
    dataset = HUB_DATASETS.get(source)
    scores = meta.get("metrics", {}).get("values", {})
    tags = ["gan", "pytorch", "gankit", meta["model"], meta["family"]]
    if meta.get("conditional"):
        tags.append("class-conditional")
    front: dict[str, Any] = {"library_name": "gankit", "license": "other", "tags": list(dict.fromkeys(tags))}
    if dataset:
        front["datasets"] = [dataset]
    if pipeline:
        front["pipeline_tag"] = pipeline
    if scores:
        front["model-index"] = [{"name": name, "results": [{
            "task": {"type": task},
            "dataset": {"name": source, "type": dataset or source},
            "metrics": [{"type": k, "name": k, "value": v} for k, v in scores.items()],
        }]}]
    shape = tuple(meta["shape"])
    cond = meta.get("conditional")
    if meta.get("captioned"):
        cli = f'gankit sample {name} --text "a thick slanted seven" --seeds 0-15 --out grid.png'
        py = f'x = g.sample_seeds(range(16), text="a thick slanted seven")  # (16, {", ".join(map(str, shape))})'
    elif meta.get("task"):
        verb = {"srgan": "upscale", "inpaint": "inpaint"}.get(meta["model"], "translate")
        cli = f"gankit {verb} {name} INPUT.png --out OUTPUT.png" + (" --mask MASK.png" if verb == "inpaint" else "")
        py = "y = g.translate(a)  # a: (N, C, H, W) in [-1, 1]"
    else:
        cli = f"gankit sample {name} --seeds 0-15 --out grid.png" + (" --label 7" if cond else "")
        what = "points" if len(shape) != 3 else "images"
        py = (f"x = g.sample_seeds(range(16){', label=7' if cond else ''})  # (16, {', '.join(map(str, shape))}) "
              f"{what} in [-1, 1], one seed each")
    metric_lines = [f"| `{k}` | {v:.4g} |" for k, v in scores.items()]
    protocol = meta.get("metrics", {}).get("protocol", {})
    evaluation = ("| metric (protocol in the name) | value |\n|---|---|\n" + "\n".join(metric_lines)
                  + (f"\n\nProtocol: `{json.dumps(protocol, sort_keys=True)}`" if protocol else "")) if scores \
        else "Not evaluated before export (`gankit eval RUN`, then export again, adds the scores here)."
    traced = meta.get("traced")
    one = "; one z per call" if traced and traced.get("batch") == 1 else ""
    traced_line = (f"\n- `{traced['file']}`: the generator traced to {traced['format']} (inputs "
                   f"{', '.join(traced['inputs'])}{one}; max abs difference from the eager generator on seeds "
                   f"{traced['check']['seeds'][0]}-{traced['check']['seeds'][-1]}: "
                   f"{traced['check']['max_abs_diff']:.2g})") if traced else ""
    data = meta.get("data", {})
    n = f", {data['n']} examples" if data.get("n") else ""
    seeds_note = "" if meta.get("task") else (
        "\nImage k of `--seeds` is drawn from seed k alone, so any image can be drawn again; each PNG that\n"
        "gankit writes names its seed in its text chunks (`gankit:seed`, or `gankit:seeds` for a grid).\n")
    return f"""---
{yaml.safe_dump(front, sort_keys=False).rstrip()}
---

# {name}

A generative adversarial network trained with gankit: recipe
`{meta['recipe']}`, model `{meta['model']}` ({meta['family']}), {meta['step']} training steps,
{'EMA' if meta['ema'] else 'raw (not EMA)'} generator weights; it draws {'x'.join(map(str, shape))} outputs.

- **Training data**: `{source}`{n}.
- **Files**: `generator.safetensors` (the weights), `config.json` (the run's resolved config, data
  shape and architecture hash `{meta['model_hash']}`){traced_line}.
- **License**: not set by gankit; replace `other` in the front matter with the license you give it.

## Usage

```bash
{cli}
```

```python
import gankit
g = gankit.load("{name}")  # this folder
{py}
```
{seeds_note}
## Evaluation

{evaluation}

{INTENDED_USE}"""
