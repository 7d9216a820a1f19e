#!/usr/bin/env python3
"""Every golden fixture through the published `w2s score` and `w2s generate`, compared with golden.json.

    golden.py --w2s BUNDLE/bin/w2s --fixtures BUNDLE/fixtures --device cuda --out golden.json

The tolerances are the CPU tests' (tests/WeakToStrong.Tests/Engine/GoldenFixtureTests.cs, Cli/CliTests.cs):
each continuation log-prob within 2e-4 of transformers' float64 value, and the 12 greedy tokens exactly
(golden.json's smallest top-1/top-2 margin is above 0.02, so an F32 runtime must reproduce them).
Also runs `w2s info --json` on each fixture (checked against its config.json) and one `w2s search --json` with the
same model as tuned and untuned (its score must be 0), so every --json shape of the published, trimmed
binary is read once. Exits 1 if any case fails. Python standard library only.
"""
import argparse
import json
import pathlib
import subprocess
import sys
import time

LOGPROB_TOLERANCE = 2e-4


def run(cmd, timeout):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"exit {p.returncode}: {p.stderr.strip()[-400:]}")
    return json.loads(p.stdout)


def ids(values):
    return ",".join(str(v) for v in values)


def cli_checks(a):
    """`w2s info --json` against config.json; `w2s search --json` with tuned = untuned scores 0."""
    rows = []
    for folder in sorted(p.parent for p in pathlib.Path(a.fixtures).glob("*/golden.json")):
        row = {"fixture": folder.name, "case": "info"}
        try:
            info = run([a.w2s, "info", "--model", str(folder), "--json"], a.timeout)
            config = json.loads((folder / "config.json").read_text())
            row["ok"] = info["vocab_size"] == config["vocab_size"] and info["layers"] == config.get("num_hidden_layers", config.get("n_layer"))
        except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError, KeyError) as e:
            row.update(ok=False, error=str(e))
        rows.append(row)
    tiny = str(pathlib.Path(a.fixtures) / "llama-tiny")
    row = {"fixture": "llama-tiny", "case": "search"}
    try:
        r = run([a.w2s, "search", "--large", tiny, "--tuned", tiny, "--untuned", tiny, "--prompt", "Once upon a time",
                 "--max-new-tokens", "6", "--seed", "1", "--device", a.device, "--json", "--trace"], a.timeout * 2)
        # The same model on the same tokens scores the same (1e-4: room for a reduction order that varies by run on a device).
        row["ok"] = abs(r["score"]) <= 1e-4 and abs(r["tuned"]["log_prob"] - r["untuned"]["log_prob"]) <= 1e-4 and len(r["trace"]) >= 1
        row["score"] = r["score"]
    except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError, KeyError, TypeError) as e:
        row.update(ok=False, error=str(e))
    rows.append(row)
    for row in rows:
        print(f"{row['fixture']:15} {row['case']:6}  {'ok' if row['ok'] else 'FAIL'}{'  ' + row['error'] if 'error' in row else ''}", flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--w2s", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, default=60, help="seconds per w2s call")
    a = ap.parse_args()

    results = []
    for folder in sorted(p.parent for p in pathlib.Path(a.fixtures).glob("*/golden.json")):
        golden = json.loads((folder / "golden.json").read_text())
        for i, case in enumerate(golden["cases"]):
            base = [a.w2s, "--model", str(folder), "--prompt-tokens", ids(case["prompt_tokens"]), "--device", a.device, "--json"]
            row = {"fixture": folder.name, "case": i}
            start = time.monotonic()
            try:
                score = run([a.w2s, "score"] + base[1:] + ["--continuation-tokens", ids(case["continuation_tokens"])], a.timeout)
                diffs = [abs(x - y) for x, y in zip(score["logprobs"], case["continuation_logprobs"])]
                row["score_max_abs_diff"] = max(diffs) if diffs else 0.0
                row["score_ok"] = len(score["logprobs"]) == len(case["continuation_logprobs"]) and row["score_max_abs_diff"] <= LOGPROB_TOLERANCE
                gen = run([a.w2s, "generate"] + base[1:] + ["--max-new-tokens", str(len(case["greedy_tokens"])), "--temperature", "0"], a.timeout)
                row["greedy_ok"] = gen["tokens"] == case["greedy_tokens"]
                if not row["greedy_ok"]:
                    row["greedy_tokens"] = gen["tokens"]
            except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError, KeyError) as e:
                row["error"] = str(e)
                row["score_ok"] = row.get("score_ok", False)
                row["greedy_ok"] = False
            row["ok"] = row["score_ok"] and row["greedy_ok"]
            row["seconds"] = round(time.monotonic() - start, 2)
            results.append(row)
            diff = row.get("score_max_abs_diff")
            score_text = ("ok" if row["score_ok"] else "FAIL") + (f" (max |diff| {diff:.1e})" if diff is not None else "")
            error = f"  {row['error']}" if "error" in row else ""
            print(f"{folder.name:15} case {i}  log-probs {score_text}  greedy {'ok' if row['greedy_ok'] else 'FAIL'}{error}", flush=True)

    results += cli_checks(a)
    failed = sum(not r["ok"] for r in results)
    summary = {"device": a.device, "logprob_tolerance": LOGPROB_TOLERANCE, "cases": results,
               "passed": len(results) - failed, "failed": failed}
    pathlib.Path(a.out).write_text(json.dumps(summary, indent=1))
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
