"""Statistics of human judgements: a proportion with its Wilson interval (Turing-test fool
rates) and Bradley-Terry strengths from pairwise preferences, with bootstrap intervals."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float, float]:
    """(k/n, low, high): the Wilson score interval (95 % by default), sensible for small n and for
    k = 0 or k = n, where the normal approximation gives an interval of width 0."""
    if n == 0:
        return float("nan"), 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return p, max(0.0, centre - half), min(1.0, centre + half)


def bradley_terry(names: Sequence[str], wins: Sequence[tuple[str, str]], iters: int = 500,
                  tol: float = 1e-10) -> dict[str, float]:
    """Strengths p_i with P(i beats j) = p_i / (p_i + p_j), fitted by Hunter's (2004) MM
    algorithm from (winner, loser) pairs; returned as log-strengths centred at 0.

    A tiny prior (one half-win against every other item) keeps the estimate finite when a run
    won or lost every comparison."""
    idx = {n: i for i, n in enumerate(names)}
    k = len(names)
    w = [[0.0] * k for _ in range(k)]  # w[i][j]: times i beat j
    for a, b in wins:
        w[idx[a]][idx[b]] += 1
    for i in range(k):
        for j in range(k):
            if i != j:
                w[i][j] += 0.5
    p = [1.0] * k
    for _ in range(iters):
        new = []
        for i in range(k):
            total_wins = sum(w[i])
            denom = sum((w[i][j] + w[j][i]) / (p[i] + p[j]) for j in range(k) if j != i)
            new.append(total_wins / denom if denom else p[i])
        g = math.exp(sum(math.log(x) for x in new) / k)
        new = [x / g for x in new]
        done = max(abs(a - b) for a, b in zip(new, p, strict=True)) < tol
        p = new
        if done:
            break
    return {n: math.log(p[idx[n]]) for n in names}


def bradley_terry_ci(names: Sequence[str], wins: Sequence[tuple[str, str]], rounds: int = 200,
                     seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """{name: (log-strength, 2.5 %, 97.5 %)}: percentile bootstrap over the comparisons."""
    est = bradley_terry(names, wins)
    if not wins:
        return {n: (est[n], float("nan"), float("nan")) for n in names}
    rng = random.Random(seed)
    draws: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(rounds):
        sample = [wins[rng.randrange(len(wins))] for _ in wins]
        for n, v in bradley_terry(names, sample, iters=200, tol=1e-8).items():
            draws[n].append(v)
    out = {}
    for n in names:
        d = sorted(draws[n])
        out[n] = (est[n], d[int(0.025 * (len(d) - 1))], d[int(0.975 * (len(d) - 1))])
    return out
