#!/usr/bin/env python3
"""The peer figure: the decode shapes of `w2s bench` through Hugging Face transformers `generate` in bf16.

    hf_peer.py --shapes gpt2-124m,llama3-8b --batches 1,16 --prompt-tokens 64 --steps 32 --out hf.json

Models are built from a config with random weights directly on the GPU (no download), in bf16. Greedy decoding,
min_new_tokens = max_new_tokens so no sequence stops early. Per shape and batch: prefill time (generate of one new
token) and the decode step time ((time of generate(1 + steps) − time of generate(1)) / steps), best of two;
tokens/s = batch / step time; GB/s = weight bytes / step time (every weight read once per step).
"""
import argparse
import json
import sys
import time


def build(shape, transformers):
    if shape == "gpt2-124m":
        config = transformers.GPT2Config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12)
        return transformers.GPT2LMHeadModel, config
    if shape == "llama3-8b":
        config = transformers.LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                          num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192,
                                          rms_norm_eps=1e-5, tie_word_embeddings=False)  # RoPE base left default: no effect on speed
        return transformers.LlamaForCausalLM, config
    raise SystemExit(f"hf_peer.py: unknown shape {shape!r} (gpt2-124m, llama3-8b)")


def measure(shape, a, torch, transformers, device):
    cls, config = build(shape, transformers)
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with device:
            model = cls(config)
    finally:
        torch.set_default_dtype(previous)
    model.eval()
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    results = []
    for batch in [int(b) for b in a.batches.split(",")]:
        ids = torch.randint(0, config.vocab_size, (batch, a.prompt_tokens), device=device)
        mask = torch.ones_like(ids)

        def generate(n):
            torch.cuda.synchronize()
            start = time.perf_counter()
            with torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                                     do_sample=False, pad_token_id=0)
            torch.cuda.synchronize()
            assert out.shape == (batch, a.prompt_tokens + n), out.shape
            return time.perf_counter() - start

        generate(2)  # warm-up: kernels, allocator, cache
        prefill = min(generate(1) for _ in range(2))
        full = min(generate(1 + a.steps) for _ in range(2))
        step = max(full - prefill, 1e-9) / a.steps
        results.append({"shape": shape, "batch": batch, "dtype": "bf16", "prompt_tokens": a.prompt_tokens, "steps": a.steps,
                        "prefill_seconds": prefill, "decode_step_ms": step * 1e3, "tokens_per_second": batch / step,
                        "weight_bytes": weight_bytes, "weight_gigabytes_per_second": weight_bytes / step / 1e9,
                        "attn_implementation": getattr(model.config, "_attn_implementation", None)})
        print(f"{shape:10} batch {batch:3}  prefill {prefill * 1e3:8.1f} ms  decode {step * 1e3:7.2f} ms/step  "
              f"{batch / step:9.1f} tok/s  {weight_bytes / step / 1e9:7.1f} GB/s", flush=True)
    del model
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="gpt2-124m,llama3-8b")
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    import torch
    import transformers
    if not torch.cuda.is_available():
        raise SystemExit("hf_peer.py: torch sees no CUDA device")
    device = torch.device("cuda")
    results, errors = [], []
    for shape in a.shapes.split(","):
        try:
            results += measure(shape, a, torch, transformers, device)
        except Exception as e:  # one shape's failure (e.g. an API change) must not hide the other's figure
            errors.append(f"{shape}: {type(e).__name__}: {e}")
            print(f"{shape}: FAILED {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        torch.cuda.empty_cache()
    with open(a.out, "w") as f:
        json.dump({"torch": torch.__version__, "transformers": transformers.__version__, "device": torch.cuda.get_device_name(0),
                   "results": results, "errors": errors}, f, indent=1)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
