#!/usr/bin/env python3
"""Writes report.json and report.md from the steps run.sh ran (their outputs in its work folder).

Exits 1 if any step failed or timed out, or if a step's output cannot be read. Python standard library only.
"""
import argparse
import json
import pathlib
import sys


def read_json(path):
    try:
        return json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", required=True)
    ap.add_argument("--rehearse", default="0")
    ap.add_argument("--seconds", type=float, default=0)
    ap.add_argument("--version", default="")
    a = ap.parse_args()
    work, out = pathlib.Path(a.work), pathlib.Path(a.out)

    steps = []
    for line in (work / "steps.tsv").read_text().splitlines():
        name, rc, seconds, limit, *note = line.split("\t") + [""]
        status = "skip" if rc == "skip" else "pass" if rc == "0" else "timeout" if rc in ("124", "137") else "FAIL"
        err = work / f"{name}.err"
        if status in ("FAIL", "timeout") and not note[0] and err.exists():
            tail = [l for l in err.read_text(errors="replace").splitlines() if l.strip()]
            note = [tail[-1][:300] if tail else ""]
        steps.append({"step": name, "status": status, "exit": None if rc == "skip" else int(rc), "seconds": float(seconds),
                      "limit_seconds": int(limit), "note": note[0]})
    by_name = {s["step"]: s for s in steps}

    def output(name, file=None):
        if by_name.get(name, {}).get("status") in (None, "skip"):
            return None
        data = read_json(work / (file or f"{name}.out"))
        if data is None and by_name[name]["status"] == "pass":
            by_name[name].update(status="FAIL", note="its output is not the JSON expected")
        return data

    report = {"rehearse": a.rehearse == "1", "device": a.device, "bundle": a.version, "seconds": a.seconds, "steps": steps}
    if (work / "device.out").exists():
        report["gpu"] = (work / "device.out").read_text().strip()
    report["kernels"] = output("kernels")
    ops = output("ops-test")
    if ops is not None:
        report["ops_test"] = {k: ops.get(k) for k in ("device_name", "reference", "passed", "failed", "skipped")}
        report["ops_test"]["failures"] = [c for c in ops.get("checks", []) if c["status"] == "FAIL"]
        report["ops_test"]["checks"] = ops.get("checks", [])
    perf = output("ops-perf")
    if perf is not None:
        report["ops_perf"] = {"ceilings": perf.get("ceilings"), "timings": perf.get("timings")}
    golden = output("golden", "golden.json")
    if golden is not None:
        report["golden"] = golden
    bench = [r for name in ("bench-gpt2-124m", "bench-llama3-8b") if (b := output(name)) for r in b.get("results", [])]
    report["bench"] = bench
    hf = output("hf-peer", "hf-peer.json")
    report["hf_peer"] = hf
    comparison = []
    for r in bench:
        if r["phase"] != "decode":
            continue
        peer = next((h for h in (hf or {}).get("results", []) if h["shape"] == r["model"] and h["batch"] == r["batch"]), None)
        comparison.append({"shape": r["model"], "dtype": r["dtype"], "batch": r["batch"], "w2s_tokens_per_second": r["tokens_per_second"],
                           "w2s_weight_gigabytes_per_second": r["weight_gigabytes_per_second"], "fraction_of_bandwidth": r["fraction_of_bandwidth"],
                           "bandwidth_gigabytes_per_second": r["bandwidth_gigabytes_per_second"],
                           "hf_tokens_per_second": peer and peer["tokens_per_second"],
                           "w2s_over_hf": peer and r["tokens_per_second"] / peer["tokens_per_second"]})
    report["decode_vs_hf"] = comparison
    report["ok"] = all(s["status"] in ("pass", "skip") for s in steps)
    (out / "report.json").write_text(json.dumps(report, indent=1))

    md = [f"# GPU check{' (rehearsal, CPU only)' if report['rehearse'] else ''}", ""]
    md.append(f"**{'PASS' if report['ok'] else 'FAIL'}** in {a.seconds:.0f} s; device: {report.get('gpu', a.device)}; bundle: {a.version}")
    md += ["", "| step | status | seconds | limit | note |", "|---|---|---:|---:|---|"]
    md += [f"| {s['step']} | {s['status']} | {s['seconds']:.1f} | {s['limit_seconds']} | {s['note']} |" for s in steps]
    if "ops_test" in report:
        o = report["ops_test"]
        md += ["", f"## w2s ops (test): {o['passed']} passed, {o['failed']} failed, {o['skipped']} skipped against {o['reference']}"]
        if o["failures"]:
            md += ["", "| op | dtype | shape | error | max | note |", "|---|---|---|---:|---:|---|"]
            md += [f"| {c['op']} | {c['dtype']} | {c['shape']} | {c['error'] if c['error'] is not None else '—'} | {c['threshold']} | {c.get('note', '')} |" for c in o["failures"]]
    if "ops_perf" in report and report["ops_perf"]["ceilings"]:
        c = report["ops_perf"]["ceilings"]
        # TFLOP/s on a GPU, GFLOP/s on a CPU.
        scale, unit = (1e3, "TFLOP/s") if c["compute_gigaflops"] >= 1e4 else (1, "GFLOP/s")
        md += ["", "## w2s ops (perf), model-sized shapes",
               f"Ceilings: memory {c['memory_gigabytes_per_second']:.0f} GB/s ({c['memory']}); compute {c['compute_gigaflops'] / scale:.1f} {unit} ({c['compute']}).",
               "", f"| op | dtype | shape | µs | GB/s | of memory | {unit} | of compute |", "|---|---|---|---:|---:|---:|---:|---:|"]
        md += [f"| {t['op']} | {t['dtype']} | {t['shape']} | {t['microseconds']:.1f} | {t['gigabytes_per_second']:.1f} | {t['fraction_of_bandwidth']:.0%} | "
               + (f"{t['gigaflops'] / scale:.3g} | {t['fraction_of_compute']:.0%} |" if t["gigaflops"] > 0 else " | |")
               for t in report["ops_perf"]["timings"] if t["model_sized"]]
    if "golden" in report:
        g = report["golden"]
        md += ["", f"## Golden fixtures on {g['device']}: {g['passed']} passed, {g['failed']} failed "
                   f"(log-probs within {g['logprob_tolerance']}, greedy tokens exact)"]
        md += ["", "| fixture | case | max abs log-prob diff | greedy / check |", "|---|---:|---:|---|"]
        for c in g["cases"]:
            diff = f"{c['score_max_abs_diff']:.1e}" if "score_max_abs_diff" in c else ""
            md.append(f"| {c['fixture']} | {c['case']} | {diff} | {'ok' if c.get('greedy_ok', c['ok']) else 'FAIL'}{' ' + c['error'] if 'error' in c else ''} |")
    if comparison:
        md += ["", "## Decode: w2s bench against Hugging Face transformers generate (bf16, random weights)", "",
               "| shape | batch | w2s tok/s | w2s weight GB/s | of memory ceiling | HF tok/s | w2s / HF |", "|---|---:|---:|---:|---:|---:|---:|"]
        for r in comparison:
            hf_t = f"{r['hf_tokens_per_second']:.1f}" if r["hf_tokens_per_second"] else "—"
            ratio = f"{r['w2s_over_hf']:.2f}" if r["w2s_over_hf"] else "—"
            md.append(f"| {r['shape']} | {r['batch']} | {r['w2s_tokens_per_second']:.1f} | {r['w2s_weight_gigabytes_per_second']:.1f} | "
                      f"{r['fraction_of_bandwidth']:.0%} of {r['bandwidth_gigabytes_per_second']:.0f} | {hf_t} | {ratio} |")
    (out / "report.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
