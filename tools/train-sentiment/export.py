"""Export: Hugging Face folders with BF16 safetensors, held-out perplexities, reference log-probs and the recipe."""
import fcntl
import json
import math
import os
import struct

import torch
import torch.nn.functional as F

import corpus
import model as models

REFERENCE_TOKENS = 128
GOLD_REWARD = {"npm": "vader-sentiment", "version": "1.1.3", "license": "Apache-2.0", "score": "compound",
               "implementation": "tools/train-sentiment/vader.py (checked against the package's scores)"}


# GPT-2's position table stays F32: our runtime read a BF16 (and F16) wpe wrongly when these models were made
# (log-probs off by ~0.3 on the smoke models; exact with an F32 wpe). It is 1/8 of a small model's size.
F32_TENSORS = {"transformer.wpe.weight"}


def write_safetensors(path, tensors):
    """safetensors: 8-byte little-endian header length, JSON header, then the raw little-endian data (BF16, except
    F32_TENSORS)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        if name in F32_TENSORS:
            t = t.to(torch.bfloat16).float()  # the values the model was checked with
            data, dtype = t.numpy().tobytes(), "F32"
        else:
            t = t.to(torch.bfloat16)
            data, dtype = t.view(torch.int16).numpy().tobytes(), "BF16"
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def rounded(result):
    """The model with its weights rounded to BF16 (what the folder holds), computing in F32."""
    m = models.build(result["kind"], result["config"])
    m.load_state_dict({k: v.to(torch.bfloat16).float() for k, v in result["state"].items()})
    m.eval()
    return m


@torch.no_grad()
def window_nll(m, ids, window):
    """Mean NLL of ids[1:] scored in consecutive windows: each window's first token is context only."""
    total, count = 0.0, 0
    for s in range(0, len(ids) - 1, window):
        x = torch.tensor(ids[s:s + window + 1])
        if len(x) < 2:
            break
        logits, _ = m(x[None, :-1])
        total += F.cross_entropy(logits[0], x[1:], reduction="sum").item()
        count += len(x) - 1
    return total / count, count


def export_all(args, prep, tok_a, tok_b, results):
    out = args.out
    os.makedirs(out, exist_ok=True)
    held_text = prep["heldout_text"]
    with open(os.path.join(out, "heldout.txt"), "w", encoding="utf-8") as f:
        f.write(held_text)
    with open(os.path.join(out, "prompts.jsonl"), "w", encoding="utf-8") as f:
        for p in prep["eval_prompts"]:
            f.write(json.dumps({"prompt": p}) + "\n")
    reference, recipe_models = {}, {}
    for name, result in results.items():
        tok = tok_b if name.endswith("-xtok") else tok_a
        reference[name], recipe_models[name] = export_model(out, name, result, tok, held_text)
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump({"heldout_file": "heldout.txt", "note": "written by tools/train-sentiment/export.py from PyTorch "
                   "with the BF16-rounded weights; token_ids include the leading <|endoftext|> (BOS)",
                   "models": reference}, f, indent=1)
    recipe = {
        "sources": [{"npm": n, "version": v, "license": l} for n, v, l in corpus.SOURCES],
        "gold_reward": GOLD_REWARD,
        "documents": prep["documents"], "tokens": {"train_a": len(prep["train_a"]), "heldout_a": len(prep["held_a"]),
                                                   "train_b": len(prep["train_b"]), "heldout_b": len(prep["held_b"])},
        "tokenizers": {"A": tok_a.vocab_size, "B": tok_b.vocab_size}, "sequence_length": 128,
        "eval_prompts": len(prep["eval_prompts"]), "dpo_prefixes": len(prep["dpo_prefixes"]),
        "models": recipe_models, "torch": torch.__version__, "threads": torch.get_num_threads(),
    }
    with open(os.path.join(out, "recipe.json"), "w") as f:
        json.dump(recipe, f, indent=1, default=str)


def export_model(out, name, result, tok, held_text):
    """One model's folder; returns its reference.json and recipe.json entries."""
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    m = rounded(result)
    write_safetensors(os.path.join(folder, "model.safetensors"), m.export_state())
    config = m.hf_config()
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(folder, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": tok.eos_id, "eos_token_id": tok.eos_id, "do_sample": True,
                   "temperature": 0.7, "top_k": 50}, f, indent=2)
    tok.save(folder, config.get("max_position_embeddings", config.get("n_positions")))
    ids = [tok.eos_id] + tok.encode(held_text)
    window = 128
    nll, count = window_nll(m, ids, window)
    with torch.no_grad():
        x = torch.tensor(ids[:REFERENCE_TOKENS + 1])
        logits, _ = m(x[None, :-1])
        lp = torch.gather(F.log_softmax(logits[0], dim=-1), 1, x[1:, None])[:, 0]
    reference = {"token_ids": ids[:REFERENCE_TOKENS + 1], "logprobs": [round(v, 6) for v in lp.tolist()],
                 "heldout_window": window, "heldout_tokens_scored": count, "heldout_mean_nll": nll,
                 "heldout_perplexity": math.exp(nll),
                 "heldout_bits_per_byte": nll * count / len(held_text.encode()) / math.log(2),
                 "heldout_token_count": len(ids)}
    recipe = {k: v for k, v in result.items() if k not in ("state",)}
    recipe.update({"heldout_corpus_perplexity": math.exp(result["heldout_nll"]), "heldout_txt_perplexity": math.exp(nll),
                   "heldout_txt_bits_per_byte": reference["heldout_bits_per_byte"],
                   "tokenizer": "B" if name.endswith("-xtok") else "A"})
    return reference, recipe


def update(out, name, result, tok):
    """Re-exports one model into an existing export (its folder, and its entries in reference.json and recipe.json).
    Two retune processes (one per model) may finish together: the JSON files are rewritten under a lock."""
    with open(os.path.join(out, "heldout.txt"), encoding="utf-8") as f:
        held_text = f.read()
    entry, recipe_entry = export_model(out, name, result, tok, held_text)
    with open(os.path.join(out, "recipe.json")) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _update_json(out, name, entry, recipe_entry)


def _update_json(out, name, entry, recipe_entry):
    with open(os.path.join(out, "reference.json")) as f:
        reference = json.load(f)
    reference["models"][name] = entry
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(reference, f, indent=1)
    with open(os.path.join(out, "recipe.json")) as f:
        recipe = json.load(f)
    recipe["models"][name] = recipe_entry
    recipe["gold_reward"] = GOLD_REWARD
    with open(os.path.join(out, "recipe.json"), "w") as f:
        json.dump(recipe, f, indent=1, default=str)


def read_folder(folder):
    """An exported GPT-2 folder back as a training result ({kind, config, state}) and its tokenizer's merges."""
    with open(os.path.join(folder, "config.json")) as f:
        hf = json.load(f)
    if hf["model_type"] != "gpt2":
        raise ValueError(f"{folder}: only GPT-2 folders are read back (got {hf['model_type']})")
    config = {k: hf[k] for k in ("vocab_size", "n_embd", "n_head", "n_layer", "n_positions", "layer_norm_epsilon",
                                 "eos_token_id")}
    with open(os.path.join(folder, "model.safetensors"), "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    state = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        begin, end = spec["data_offsets"]
        raw = bytearray(data[begin:end])
        if spec["dtype"] == "BF16":
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16).float()
        elif spec["dtype"] == "F32":
            t = torch.frombuffer(raw, dtype=torch.float32).clone()
        else:
            raise ValueError(f"{folder}: {name} is {spec['dtype']}")
        t = t.reshape(spec["shape"])
        # export_state wrote GPT-2's linear layers as Conv1D ([in, out]); nn.Linear holds [out, in].
        if name.endswith(".weight") and any(s in name for s in ("c_attn", "c_proj", "c_fc")):
            t = t.t().contiguous()
        state[name] = t
    with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
        merges = [tuple(m) for m in json.load(f)["model"]["merges"]]
    return {"kind": "gpt2", "config": config, "state": state}, merges
