#!/usr/bin/env python3
"""Compares w2s eval JSONL files on the (id, seed) runs they all share.

    python3 tools/compare-evals.py BASELINE.jsonl OTHER.jsonl [MORE.jsonl ...]

Per file: runs, mean gold reward ± s.e. (over prompts: each prompt's mean over its seeds), large tokens sampled per
response, wall ms per response, large-model log-likelihood per token; per other file also the paired reward
difference to the baseline ± s.e. (over prompts) and the ratios of large tokens and wall time to the baseline's.
"""
import json
import math
import statistics
import sys


def load(path):
    runs = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                runs[(r["id"], r["seed"])] = r
    return runs


def over_prompts(values):
    """Mean and standard error over prompts of {(id, seed): x}, seeds averaged within a prompt first."""
    by_prompt = {}
    for (pid, _), x in values.items():
        by_prompt.setdefault(pid, []).append(x)
    means = [statistics.fmean(xs) for xs in by_prompt.values()]
    se = statistics.stdev(means) / math.sqrt(len(means)) if len(means) > 1 else float("nan")
    return statistics.fmean(means), se


files = [(p, load(p)) for p in sys.argv[1:]]
shared = set.intersection(*(set(runs) for _, runs in files))
if not shared:
    sys.exit("no (id, seed) run is in every file")
base = files[0][1]
print(f"{len(shared)} shared runs ({len({k[0] for k in shared})} prompts)")
for path, runs in files:
    reward, reward_se = over_prompts({k: runs[k]["reward"] for k in shared})
    tokens = statistics.fmean(runs[k]["stats"]["large_tokens_sampled"] for k in shared)
    wall = statistics.fmean(runs[k]["stats"]["wall_ms"] for k in shared)
    loglik = statistics.fmean(runs[k]["large_logprob_per_token"] for k in shared)
    line = f"{path}: {runs[next(iter(shared))]['method']}: reward {reward:.4f} ± {reward_se:.4f}, large tokens {tokens:.1f}, wall {wall:.0f} ms, large loglik/token {loglik:.3f}"
    if runs is not base:
        diff, diff_se = over_prompts({k: runs[k]["reward"] - base[k]["reward"] for k in shared})
        base_tokens = statistics.fmean(base[k]["stats"]["large_tokens_sampled"] for k in shared)
        base_wall = statistics.fmean(base[k]["stats"]["wall_ms"] for k in shared)
        line += f"; vs baseline: reward {diff:+.4f} ± {diff_se:.4f}, tokens ×{tokens / base_tokens:.3f}, wall ×{wall / base_wall:.3f}"
    print(line)
