"""A short model card in every run folder (MODEL_CARD.md): what the model is, what it was trained
on, how it scored, and that its images are generated (the seeds' ethics section)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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

## Intended use and limits
For research and teaching on generative models. Samples imitate the training data and can
reproduce its biases or, for small data sets, near-copies of training examples; they are not
real observations. Do not present them as real.

## Provenance
Every PNG that gankit writes from this model (`gankit sample`, the studio, sample grids) carries
text chunks `gankit:generated=true`, `gankit:model_hash` and `gankit:seed`.
"""
    path = run / "MODEL_CARD.md"
    path.write_text(text)
    return path
