"""Llama and GPT-2 decoders in PyTorch whose parameter names and maths match Hugging Face transformers, so that the
exported folders load in any HF-compatible runtime (ours included). Both support an incremental KV cache."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def _attend(q, k, v, past, offset):
    """q,k,v: [B, H, T, D]; past: (k, v) or None. Causal attention over past + new keys."""
    if past is not None:
        k = torch.cat([past[0], k], dim=2)
        v = torch.cat([past[1], v], dim=2)
    t, s = q.shape[2], k.shape[2]
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    mask = torch.ones(t, s, dtype=torch.bool, device=q.device).tril(diagonal=s - t)
    scores = scores.masked_fill(~mask, float("-inf"))
    return F.softmax(scores, dim=-1) @ v, (k, v)


class LlamaLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, h, kvh, hd = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        self.h, self.kvh, self.hd = h, kvh, hd
        self.input_layernorm = RMSNorm(d, c["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(d, c["rms_norm_eps"])
        self.self_attn = nn.Module()
        self.self_attn.q_proj = nn.Linear(d, h * hd, bias=False)
        self.self_attn.k_proj = nn.Linear(d, kvh * hd, bias=False)
        self.self_attn.v_proj = nn.Linear(d, kvh * hd, bias=False)
        self.self_attn.o_proj = nn.Linear(h * hd, d, bias=False)
        self.mlp = nn.Module()
        self.mlp.gate_proj = nn.Linear(d, c["intermediate_size"], bias=False)
        self.mlp.up_proj = nn.Linear(d, c["intermediate_size"], bias=False)
        self.mlp.down_proj = nn.Linear(c["intermediate_size"], d, bias=False)

    def forward(self, x, cos, sin, past):
        b, t, _ = x.shape
        a = self.self_attn
        y = self.input_layernorm(x)
        q = a.q_proj(y).view(b, t, self.h, self.hd).transpose(1, 2)
        k = a.k_proj(y).view(b, t, self.kvh, self.hd).transpose(1, 2)
        v = a.v_proj(y).view(b, t, self.kvh, self.hd).transpose(1, 2)
        q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
        if self.kvh != self.h:
            k = k.repeat_interleave(self.h // self.kvh, dim=1)
            v = v.repeat_interleave(self.h // self.kvh, dim=1)
        o, cache = _attend(q, k, v, past, 0)
        x = x + a.o_proj(o.transpose(1, 2).reshape(b, t, -1))
        y = self.post_attention_layernorm(x)
        m = self.mlp
        return x + m.down_proj(F.silu(m.gate_proj(y)) * m.up_proj(y)), cache


def _rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Llama(nn.Module):
    """LlamaForCausalLM: model.embed_tokens, model.layers.N.*, model.norm, lm_head (untied)."""

    def __init__(self, c):
        super().__init__()
        self.config = c
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.model.layers = nn.ModuleList(LlamaLayer(c) for _ in range(c["num_hidden_layers"]))
        self.model.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        hd = c["head_dim"]
        inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        freqs = torch.outer(torch.arange(c["max_position_embeddings"], dtype=torch.float64), inv)
        emb = torch.cat([freqs, freqs], dim=-1)
        self.register_buffer("cos", emb.cos().float(), persistent=False)
        self.register_buffer("sin", emb.sin().float(), persistent=False)
        self.apply(_init)

    def forward(self, ids, past=None):
        offset = 0 if past is None else past[0][0].shape[2]
        t = ids.shape[1]
        cos, sin = self.cos[offset:offset + t], self.sin[offset:offset + t]
        x = self.model.embed_tokens(ids)
        caches = []
        for i, layer in enumerate(self.model.layers):
            x, cache = layer(x, cos, sin, None if past is None else past[i])
            caches.append(cache)
        return self.lm_head(self.model.norm(x)), caches

    def hf_config(self):
        c = self.config
        return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": c["hidden_size"],
                "intermediate_size": c["intermediate_size"], "num_hidden_layers": c["num_hidden_layers"],
                "num_attention_heads": c["num_attention_heads"], "num_key_value_heads": c["num_key_value_heads"],
                "head_dim": c["head_dim"], "max_position_embeddings": c["max_position_embeddings"],
                "rms_norm_eps": c["rms_norm_eps"], "rope_theta": c["rope_theta"], "rope_scaling": None,
                "hidden_act": "silu", "vocab_size": c["vocab_size"], "tie_word_embeddings": False,
                "attention_bias": False, "mlp_bias": False, "bos_token_id": c["eos_token_id"],
                "eos_token_id": c["eos_token_id"], "torch_dtype": "bfloat16"}

    def export_state(self):
        return {k: v for k, v in self.state_dict().items()}


class Gpt2Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["n_embd"]
        self.n_head = c["n_head"]
        self.ln_1 = nn.LayerNorm(d, eps=c["layer_norm_epsilon"])
        self.ln_2 = nn.LayerNorm(d, eps=c["layer_norm_epsilon"])
        self.attn = nn.Module()
        self.attn.c_attn = nn.Linear(d, 3 * d)
        self.attn.c_proj = nn.Linear(d, d)
        self.mlp = nn.Module()
        self.mlp.c_fc = nn.Linear(d, 4 * d)
        self.mlp.c_proj = nn.Linear(4 * d, d)

    def forward(self, x, past):
        b, t, d = x.shape
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(d, dim=2)
        shape = lambda z: z.view(b, t, self.n_head, d // self.n_head).transpose(1, 2)
        o, cache = _attend(shape(q), shape(k), shape(v), past, 0)
        x = x + self.attn.c_proj(o.transpose(1, 2).reshape(b, t, d))
        y = self.mlp.c_fc(self.ln_2(x))
        y = 0.5 * y * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (y + 0.044715 * y.pow(3))))  # gelu_new
        return x + self.mlp.c_proj(y), cache


class Gpt2(nn.Module):
    """GPT2LMHeadModel with tied embeddings: transformer.wte/wpe/h.N.*/ln_f; Conv1D weights exported [in, out]."""

    def __init__(self, c):
        super().__init__()
        self.config = c
        self.transformer = nn.Module()
        self.transformer.wte = nn.Embedding(c["vocab_size"], c["n_embd"])
        self.transformer.wpe = nn.Embedding(c["n_positions"], c["n_embd"])
        self.transformer.h = nn.ModuleList(Gpt2Block(c) for _ in range(c["n_layer"]))
        self.transformer.ln_f = nn.LayerNorm(c["n_embd"], eps=c["layer_norm_epsilon"])
        self.apply(_init)

    def forward(self, ids, past=None):
        offset = 0 if past is None else past[0][0].shape[2]
        t = ids.shape[1]
        pos = torch.arange(offset, offset + t, device=ids.device)
        x = self.transformer.wte(ids) + self.transformer.wpe(pos)
        caches = []
        for i, block in enumerate(self.transformer.h):
            x, cache = block(x, None if past is None else past[i])
            caches.append(cache)
        x = self.transformer.ln_f(x)
        return x @ self.transformer.wte.weight.t(), caches

    def hf_config(self):
        c = self.config
        return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": c["n_embd"],
                "n_head": c["n_head"], "n_layer": c["n_layer"], "n_positions": c["n_positions"],
                "n_ctx": c["n_positions"], "n_inner": None, "vocab_size": c["vocab_size"],
                "activation_function": "gelu_new", "layer_norm_epsilon": c["layer_norm_epsilon"],
                "tie_word_embeddings": True, "scale_attn_weights": True, "bos_token_id": c["eos_token_id"],
                "eos_token_id": c["eos_token_id"], "torch_dtype": "bfloat16"}

    def export_state(self):
        out = {}
        for k, v in self.state_dict().items():
            # HF GPT-2 stores its linear layers as Conv1D: weight [in, out].
            if k.endswith(".weight") and any(s in k for s in ("c_attn", "c_proj", "c_fc")):
                v = v.t()
            out[k] = v
        return out


def _init(m):
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Embedding):
        nn.init.normal_(m.weight, std=0.02)


def build(kind, c):
    return Llama(c) if kind == "llama" else Gpt2(c)


def parameter_count(m):
    return sum(p.numel() for p in m.parameters())
