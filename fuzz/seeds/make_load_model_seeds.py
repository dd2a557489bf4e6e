#!/usr/bin/env python3
"""Writes the load_model seed corpus: each tiny/ fixture model shrunk to vocabulary 8, width 4
(real tensor names, dtypes and header layout; random values), as fuzz input bytes:
u16 little-endian config length, config.json, model.safetensors.
Usage: make_load_model_seeds.py SHARED_DIR OUT_DIR"""
import json, os, random, struct, sys

shared, out = sys.argv[1], sys.argv[2]
DIMS = {1000: 8, 32: 4, 64: 8, 66: 10, 16: 4}
KEYS = {"vocab_size": 8, "hidden_size": 4, "dim": 4, "intermediate_size": 8, "hidden_dim": 8,
        "embedding_size": 4}
SIZE = {"F32": 4, "F16": 2, "BF16": 2}
os.makedirs(out, exist_ok=True)
tiny = os.path.join(shared, "fixtures/tiny")
for name in sorted(os.listdir(tiny)):
    d = os.path.join(tiny, name)
    if not os.path.isdir(d):
        continue
    cfg = json.load(open(os.path.join(d, "config.json")))
    for k, v in KEYS.items():
        if k in cfg:
            cfg[k] = v
    cfg["max_position_embeddings"] = DIMS[cfg["max_position_embeddings"]]
    raw = open(os.path.join(d, "model.safetensors"), "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    rng = random.Random(name)
    new, data = {}, b""
    for t, info in sorted(header.items(), key=lambda kv: kv[1].get("data_offsets", [0])[0]):
        if t == "__metadata__":
            new[t] = info
            continue
        shape = [DIMS.get(s, s) for s in info["shape"]]
        count = 1
        for s in shape:
            count *= s
        size = count * SIZE[info["dtype"]]
        new[t] = {"dtype": info["dtype"], "shape": shape,
                  "data_offsets": [len(data), len(data) + size]}
        data += bytes(rng.getrandbits(8) for _ in range(size))
    h = json.dumps(new, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    st = struct.pack("<Q", len(h)) + h + data
    c = json.dumps(cfg, separators=(",", ":")).encode()
    open(os.path.join(out, name), "wb").write(struct.pack("<H", len(c)) + c + st)
