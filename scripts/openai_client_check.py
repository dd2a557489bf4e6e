"""The official OpenAI Python client against `wgformer serve` (all-MiniLM-L6-v2), unchanged.

Usage: python3 openai_client_check.py BASE_URL EMBEDDINGS_GOLDENS_JSONL
Run by scripts/openai-client-check.sh, which installs the client and starts the server; this
file installs nothing. Exits non-zero on any difference.
"""

import json
import sys

import openai
from openai import OpenAI

TOL = 1e-4


def max_abs(a, b):
    assert len(a) == len(b), f"length {len(a)} != {len(b)}"
    return max(abs(x - y) for x, y in zip(a, b))


def main():
    base_url, goldens = sys.argv[1], sys.argv[2]
    rows = [json.loads(line) for line in open(goldens, encoding="utf-8") if line.strip()]
    texts = [r["sentence"] for r in rows]
    want = [r["embedding"] for r in rows]
    client = OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0)

    # Default call: the client asks for base64 and decodes it itself.
    r = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts)
    assert r.object == "list", r.object
    assert len(r.data) == len(texts), len(r.data)
    worst = 0.0
    for k, d in enumerate(r.data):
        assert d.object == "embedding" and d.index == k, (d.object, d.index)
        diff = max_abs(d.embedding, want[k])
        worst = max(worst, diff)
        assert diff < TOL, f"{texts[k]!r}: max |diff| {diff:e}"
    tokens = sum(len(r_["input_ids"]) for r_ in rows)
    assert r.usage.prompt_tokens == tokens, (r.usage, tokens)
    assert r.usage.total_tokens == tokens, (r.usage, tokens)

    # Floats asked for explicitly, one string.
    r = client.embeddings.create(model="m", input=texts[1], encoding_format="float")
    diff = max_abs(r.data[0].embedding, want[1])
    assert diff < TOL, f"float: max |diff| {diff:e}"

    # Token ids as input.
    r = client.embeddings.create(model="m", input=[rows[2]["input_ids"]])
    diff = max_abs(r.data[0].embedding, want[2])
    assert diff < TOL, f"token ids: max |diff| {diff:e}"

    # Shortened embeddings.
    r = client.embeddings.create(model="m", input=texts[0], dimensions=32)
    assert len(r.data[0].embedding) == 32
    norm = sum(x * x for x in r.data[0].embedding) ** 0.5
    assert abs(norm - 1.0) < 1e-5, norm

    # Errors reach the client as its own exception type, in OpenAI's error shape (the client
    # reads error.message into the exception's message).
    try:
        client.embeddings.create(model="m", input="word " * 300)
        raise AssertionError("an over-long input was accepted")
    except openai.BadRequestError as e:
        assert e.status_code == 400, e.status_code
        body = e.response.json()
        assert body["error"]["type"] == "invalid_request_error", body
        assert body["error"]["code"] == "validation", body
        assert "256" in body["error"]["message"], body
        assert "256" in e.message, e.message

    print(
        f"openai client {openai.__version__}: {len(texts)} embeddings equal the goldens "
        f"(worst |diff| {worst:.1e}), float/base64/token ids/dimensions/errors ok"
    )


if __name__ == "__main__":
    main()
