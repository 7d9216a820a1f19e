"""Checks exported model folders against our runtime: for each model in FOLDER/reference.json, `w2s score` on the
reference token ids must give PyTorch's log-probs (within 1e-3; F32 compute on both sides, only summation order
differs) and `w2s info` must load it.

  python3 tools/train-sentiment/check_export.py FOLDER [--w2s "dotnet run -c Release --project src/WeakToStrong.Cli --"]
"""
import argparse
import json
import os
import shlex
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--w2s", default="dotnet run -c Release --project src/WeakToStrong.Cli --")
    ap.add_argument("--tolerance", type=float, default=1e-3)
    args = ap.parse_args()
    with open(os.path.join(args.folder, "reference.json")) as f:
        reference = json.load(f)["models"]
    worst = 0.0
    for name, ref in reference.items():
        ids = ref["token_ids"]
        cmd = shlex.split(args.w2s) + ["score", "--model", os.path.join(args.folder, name), "--prompt-tokens", str(ids[0]),
                                       "--continuation-tokens", ",".join(map(str, ids[1:])), "--json"]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"FAIL {name}: w2s score exited {out.returncode}: {out.stderr.strip()}")
            return 1
        ours = json.loads(out.stdout)["logprobs"]
        diff = max(abs(a - b) for a, b in zip(ours, ref["logprobs"]))
        worst = max(worst, diff)
        ok = len(ours) == len(ref["logprobs"]) and diff < args.tolerance
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {len(ours)} log-probs, max |ours - PyTorch| = {diff:.2e}")
        if not ok:
            return 1
    print(f"all {len(reference)} models match (worst {worst:.2e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
