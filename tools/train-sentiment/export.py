"""Export: Hugging Face folders with BF16 safetensors, held-out perplexities, reference log-probs and the recipe."""
import json
import math
import os
import struct

import torch
import torch.nn.functional as F

import corpus
import model as models

REFERENCE_TOKENS = 128


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
    held_bytes = len(held_text.encode())
    for name, result in results.items():
        tok = tok_b if name.endswith("-xtok") else tok_a
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
        reference[name] = {"token_ids": ids[:REFERENCE_TOKENS + 1], "logprobs": [round(v, 6) for v in lp.tolist()],
                           "heldout_window": window, "heldout_tokens_scored": count, "heldout_mean_nll": nll,
                           "heldout_perplexity": math.exp(nll),
                           "heldout_bits_per_byte": nll * count / held_bytes / math.log(2),
                           "heldout_token_count": len(ids)}
        full_nll = result["heldout_nll"]
        recipe_models[name] = {k: v for k, v in result.items() if k not in ("state",)}
        recipe_models[name].update({"heldout_corpus_perplexity": math.exp(full_nll),
                                    "heldout_txt_perplexity": math.exp(nll),
                                    "heldout_txt_bits_per_byte": reference[name]["heldout_bits_per_byte"],
                                    "tokenizer": "B" if name.endswith("-xtok") else "A"})
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump({"heldout_file": "heldout.txt", "note": "written by tools/train-sentiment/export.py from PyTorch "
                   "with the BF16-rounded weights; token_ids include the leading <|endoftext|> (BOS)",
                   "models": reference}, f, indent=1)
    recipe = {
        "sources": [{"npm": n, "version": v, "license": l} for n, v, l in corpus.SOURCES],
        "gold_reward": {"npm": corpus.AFINN[0], "version": corpus.AFINN[1], "license": corpus.AFINN[2]},
        "documents": prep["documents"], "tokens": {"train_a": len(prep["train_a"]), "heldout_a": len(prep["held_a"]),
                                                   "train_b": len(prep["train_b"]), "heldout_b": len(prep["held_b"])},
        "tokenizers": {"A": tok_a.vocab_size, "B": tok_b.vocab_size}, "sequence_length": 128,
        "eval_prompts": len(prep["eval_prompts"]), "dpo_prefixes": len(prep["dpo_prefixes"]),
        "models": recipe_models, "torch": torch.__version__, "threads": torch.get_num_threads(),
    }
    with open(os.path.join(out, "recipe.json"), "w") as f:
        json.dump(recipe, f, indent=1, default=str)
