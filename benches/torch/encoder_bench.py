"""PyTorch baselines for BENCHMARKS.md, timed end to end like `wgformer bench --config
minilm-l6|bert-base` (same shapes, same p50/p90/seq·s⁻¹ table), with random weights:

- `--impl nn` (default): a BERT-shaped encoder (exact-erf GELU, post-LN) built from nn.Linear /
  nn.LayerNorm / softmax: eager PyTorch with nothing but its own kernels.
- `--impl transformers`: transformers' BertForSequenceClassification of the same shape, with the
  attention transformers picks by default (sdpa) or `--attn eager|sdpa`: what users run.

    python3 benches/torch/encoder_bench.py --device cpu --config minilm-l6 --batch 1,32 --seq 128,384
    python3 benches/torch/encoder_bench.py --device cuda --config bert-base --dtype f16 --json
    python3 benches/torch/encoder_bench.py --device cuda --impl transformers --dtype f16 --json
"""
import argparse
import math
import statistics
import time

import json

import torch
from torch import nn

CONFIGS = {"minilm-l6": (6, 384, 12, 1536), "bert-base": (12, 768, 12, 3072)}


class Layer(nn.Module):
    def __init__(self, h, heads, ff):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(h, 3 * h)
        self.out = nn.Linear(h, h)
        self.ln1 = nn.LayerNorm(h, eps=1e-12)
        self.ff_in = nn.Linear(h, ff)
        self.ff_out = nn.Linear(ff, h)
        self.ln2 = nn.LayerNorm(h, eps=1e-12)

    def forward(self, x, mask):
        b, s, h = x.shape
        d = h // self.heads
        q, k, v = self.qkv(x).view(b, s, 3, self.heads, d).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + mask[:, None, None, :]
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, h)
        x = self.ln1(x + self.out(ctx))
        return self.ln2(x + self.ff_out(nn.functional.gelu(self.ff_in(x))))


class Encoder(nn.Module):
    def __init__(self, layers=6, h=384, heads=12, ff=1536, vocab=30522, pos=512):
        super().__init__()
        self.word = nn.Embedding(vocab, h)
        self.pos = nn.Embedding(pos, h)
        self.typ = nn.Embedding(2, h)
        self.ln = nn.LayerNorm(h, eps=1e-12)
        self.layers = nn.ModuleList(Layer(h, heads, ff) for _ in range(layers))
        self.pool = nn.Linear(h, h)
        self.cls = nn.Linear(h, 2)

    def forward(self, ids, mask):
        s = ids.shape[1]
        x = self.ln(self.word(ids) + self.pos(torch.arange(s, device=ids.device))[None] + self.typ(torch.zeros_like(ids)))
        for layer in self.layers:
            x = layer(x, mask)
        return self.cls(torch.tanh(self.pool(x[:, 0])))


def hf_model(layers, h, heads, ff, attn):
    """transformers' BERT classifier of this shape; `attn` None keeps transformers' default."""
    from transformers import BertConfig, BertForSequenceClassification

    kw = {} if attn is None else {"attn_implementation": attn}
    cfg = BertConfig(
        vocab_size=30522,
        hidden_size=h,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=ff,
        max_position_embeddings=512,
        num_labels=2,
        **kw,
    )
    return BertForSequenceClassification(cfg)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", default="1,32")
    ap.add_argument("--seq", default="128,384")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--config", default="minilm-l6", choices=sorted(CONFIGS))
    ap.add_argument("--dtype", default="f32", choices=["f32", "f16"], help="f16: model.half(), as users run it")
    ap.add_argument("--impl", default="nn", choices=["nn", "transformers"])
    ap.add_argument("--attn", default=None, choices=["eager", "sdpa"], help="transformers only; default: transformers' choice")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(0)
    layers, h, heads, ff = CONFIGS[a.config]
    dev = torch.device(a.device)
    dtype = torch.float16 if a.dtype == "f16" else torch.float32
    if a.impl == "transformers":
        model = hf_model(layers, h, heads, ff, a.attn).eval().to(dev, dtype)
        import transformers

        attn = getattr(model.config, "_attn_implementation", None) or "default"
        impl = f"transformers {transformers.__version__} BertForSequenceClassification, {attn} attention"
        forward = lambda ids, mask: model(input_ids=ids, attention_mask=mask).logits
    else:
        model = Encoder(layers, h, heads, ff).eval().to(dev, dtype)
        impl = "nn modules"
        forward = model
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    where = torch.cuda.get_device_name() if dev.type == "cuda" else f"{torch.get_num_threads()} CPU threads"
    head = f"torch {torch.__version__}, {where}, {a.dtype}, {a.config}, {impl}"
    rows = []
    if not a.json:
        print(head)
        print(f"{'batch':>6} {'seq':>6} {'p50 ms':>10} {'p90 ms':>10} {'seq/s':>10}")
    with torch.inference_mode():
        for b in map(int, a.batch.split(",")):
            for s in map(int, a.seq.split(",")):
                ids = torch.randint(1000, 30522, (b, s), device=dev)
                if a.impl == "transformers":
                    mask = torch.ones(b, s, device=dev, dtype=torch.long)
                else:
                    mask = torch.zeros(b, s, device=dev, dtype=dtype)
                forward(ids, mask)
                sync()
                ms = []
                for _ in range(a.runs):
                    t = time.perf_counter()
                    forward(ids, mask)
                    sync()
                    ms.append((time.perf_counter() - t) * 1e3)
                ms.sort()
                p50 = statistics.median(ms)
                p90 = ms[min(len(ms) - 1, math.ceil(0.9 * len(ms)) - 1)]
                rows.append({"batch": b, "seq": s, "p50_ms": p50, "p90_ms": p90, "seq_per_s": b / p50 * 1e3})
                if not a.json:
                    print(f"{b:>6} {s:>6} {p50:>10.2f} {p90:>10.2f} {b / p50 * 1e3:>10.1f}", flush=True)
    if a.json:
        print(json.dumps({"what": head, "rows": rows}))


if __name__ == "__main__":
    main()
