"""Sample-quality and diversity metrics. Each result name carries its protocol, e.g.
`fid_mnistcnn_5k` (extractor, sample count), `precision_mnistcnn_k3_5k`, `modes_pacgan_2.5k`.

    gankit.metrics.evaluate(fake, reference_dataset, ["fid", "kid"])  ->  dict of results
"""

from .evaluate import evaluate, metrics

__all__ = ["evaluate", "metrics"]
