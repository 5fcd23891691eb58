"""The BiGRU: a frozen WordPiece table, a tagger encoder and a sentence encoder.

One graph, two encoders over the same frozen 384-d input table (all-MiniLM-L6-v2's):
- tagger: table + case feature -> stacked BiGRU -> per-piece UPOS logits and NER emissions
  (a linear-chain CRF over words, decoded at serve time in numpy);
- sentence: table (-> linear, narrower) -> BiGRU -> masked mean+max pooling -> linear ->
  embedding.
Both directions' outputs are concatenated. Every GRU runs on a packed sequence, so the
backward direction starts at each sentence's own last piece; the TorchScript exporter turns
the pack/pad pair into the ONNX GRU's `sequence_lens`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from app.model.featurize import NUM_CASE_CLASSES
from training.crf import CRF


@dataclass
class ModelConfig:
    vocab_size: int = 30522
    emb_dim: int = 384  # the teacher's input embedding width
    case_dim: int = 16
    lex_rows: int = 0  # trainable lexical rows for pieces frequent in train (0: none)
    lex_dim: int = 64
    lex_dropout: float = 0.15  # a frequent piece is shown as rare this often in training
    tag_input: int = 0  # tagger GRU input: a linear projection of the table (0: the table)
    hidden: int = 256  # tagger GRU, per direction
    layers: int = 2
    dropout: float = 0.33
    sent_input: int = 0  # sentence GRU input: a linear projection of the table (0: the table)
    sent_hidden: int = 256  # sentence GRU, per direction
    sent_dim: int = 384  # the teacher's embedding width, so it can be distilled; 0: no encoder
    n_upos: int = 17  # the default heads' sizes (EWT's UPOS and UNER's IOB2 labels)
    n_ner: int = 7
    # One output per head, in this order: {"name", "size", "decoder": "softmax" | "crf" |
    # "lemma"} and, for a head on the morphology layer, "layer": "morph", and "pieces":
    # "first+last" for a head whose word scores are its first and last pieces' summed (the
    # decoder does that; the graph answers every piece); at most one CRF head.
    # None: UPOS (softmax) and NER (CRF) of the sizes above.
    heads: list[dict] | None = None
    # A BiGRU of this width per direction over the tagger's states and inputs, read by the heads
    # on the morphology layer (0: none). It adds to a trained tagger without changing it.
    morph_hidden: int = 0
    morph_input: int = 0  # the morphology GRU's input: a linear projection (0: states + inputs)
    # A dependency parsing layer over the tagger's states and inputs (0: none), as the
    # morphology layer adds to a trained tagger without changing it (training/parse.py).
    parse_hidden: int = 0  # its BiGRU, per direction
    parse_input: int = 256  # the BiGRU's input: a linear projection of states + inputs
    parse_layers: int = 2
    parse_arc: int = 256  # arc features
    parse_rel: int = 128  # relation features
    n_rels: int = 0  # relation labels

    def to_dict(self) -> dict:
        return asdict(self)

    def head_list(self) -> list[dict]:
        if self.heads is not None:
            return self.heads
        return [
            {"name": "upos", "size": self.n_upos, "decoder": "softmax"},
            {"name": "ner", "size": self.n_ner, "decoder": "crf"},
        ]


class PackedBiGRU(nn.Module):
    """Bidirectional GRU on right-padded input; outputs at padded steps are zero."""

    def __init__(self, input_size: int, hidden: int, layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.gru = nn.GRU(
            input_size,
            hidden,
            num_layers=layers,
            bidirectional=True,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
        )

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:  # (B, T, C), (B,) -> (B, T, 2H)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out


def length_mask(lengths: Tensor, T: int) -> Tensor:  # (B,) -> (B, T) bool
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


def masked_mean_max(h: Tensor, lengths: Tensor) -> Tensor:  # (B, T, C), zero at pads -> (B, 2C)
    """Mean and max over each sentence's own steps; pads never count."""
    mask = length_mask(lengths, h.shape[1]).unsqueeze(-1)  # (B, T, 1)
    mean = h.sum(1) / lengths.clamp(min=1).unsqueeze(-1).to(h.dtype)
    peak = h.masked_fill(~mask, -1e4).amax(1)
    return torch.cat([mean, peak], dim=-1)


class BiGRUModel(nn.Module):
    def __init__(self, cfg: ModelConfig, table: Tensor):
        super().__init__()
        self.cfg = cfg
        # Frozen, stored in fp16: the ONNX file carries it at half size, and training sees
        # the very same rounded values the exported graph does.
        self.register_buffer("table", table.to(torch.float16))
        self.case = nn.Embedding(NUM_CASE_CLASSES, cfg.case_dim, padding_idx=0)
        self.drop = nn.Dropout(cfg.dropout)
        # The frozen table knows pieces, not tags; a small trainable lexicon for the pieces seen
        # in training adds what EWT teaches about them. Row 0 is padding, row 1 "rare".
        self.register_buffer("lex_index", torch.zeros(cfg.vocab_size, dtype=torch.long))
        self.lex = nn.Embedding(max(cfg.lex_rows, 2), cfg.lex_dim, padding_idx=0)
        # A narrower GRU input makes an encoder several times cheaper to run; the projection of
        # a frozen table is itself a table, so an export folds it into one (see `fold`).
        self.tag_in = nn.Linear(cfg.emb_dim, cfg.tag_input, bias=False) if cfg.tag_input else None
        tag_width = (cfg.tag_input or cfg.emb_dim) + cfg.case_dim
        tag_width += cfg.lex_dim if cfg.lex_rows else 0
        self.tagger = PackedBiGRU(tag_width, cfg.hidden, cfg.layers, cfg.dropout)
        # Each head is an attribute of its own name (`upos`, `ner`), the CRF of the span head is
        # `crf`: the parameter names of every checkpoint and exported graph.
        self.head_names = [h["name"] for h in cfg.head_list()]
        crf_heads = [h for h in cfg.head_list() if h["decoder"] == "crf"]
        if len(crf_heads) > 1:
            raise ValueError("at most one span (CRF) head per model")
        morph_width = 2 * cfg.hidden + tag_width
        self.morph_in = nn.Linear(morph_width, cfg.morph_input) if cfg.morph_input else None
        self.morph = (
            PackedBiGRU(cfg.morph_input or morph_width, cfg.morph_hidden)
            if cfg.morph_hidden
            else None
        )
        for h in cfg.head_list():
            if not h["name"].isidentifier() or hasattr(self, h["name"]):
                raise ValueError(f"head name {h['name']!r} is taken or not an identifier")
            width = 2 * (cfg.morph_hidden if h.get("layer") == "morph" else cfg.hidden)
            setattr(self, h["name"], nn.Linear(width, h["size"]))
        self.crf = CRF(crf_heads[0]["size"]) if crf_heads else None
        self.parser = (
            ParseLayer(morph_width, cfg.parse_input, cfg.parse_hidden, cfg.parse_layers,
                       cfg.parse_arc, cfg.parse_rel, cfg.dropout, cfg.n_rels)
            if cfg.parse_hidden
            else None
        )  # fmt: skip
        self.sent_in = (
            nn.Linear(cfg.emb_dim, cfg.sent_input, bias=False)
            if cfg.sent_input and cfg.sent_dim
            else None
        )
        self.sent = (
            PackedBiGRU(cfg.sent_input or cfg.emb_dim, cfg.sent_hidden) if cfg.sent_dim else None
        )
        self.sent_proj = nn.Linear(4 * cfg.sent_hidden, cfg.sent_dim) if cfg.sent_dim else None

    def fold(self) -> None:
        """Precompute each projected table as a buffer (`folded_tag`, `folded_sent`): the
        exported graph then looks the projected rows up (no per-piece matmul), with the same
        float32 values the projection gives. Only the export folds; `unfold` drops them."""
        with torch.no_grad():
            for which in ("tag", "sent"):
                proj = self._projection(which)
                if proj is not None:
                    folded = proj(self.table.float()).contiguous()
                    self.register_buffer(f"folded_{which}", folded)

    def unfold(self) -> None:
        for which in ("tag", "sent"):
            if hasattr(self, f"folded_{which}"):
                delattr(self, f"folded_{which}")

    def _projection(self, which: str) -> nn.Linear | None:
        return self.tag_in if which == "tag" else self.sent_in

    def sentence_parameters(self) -> list[nn.Parameter]:
        """What distillation trains: the sentence encoder and its projection."""
        assert self.sent is not None and self.sent_proj is not None
        inner = [] if self.sent_in is None else [*self.sent_in.parameters()]
        return [*inner, *self.sent.parameters(), *self.sent_proj.parameters()]

    def embed_pieces(self, input_ids: Tensor) -> Tensor:  # (B, T) -> (B, T, E)
        return nn.functional.embedding(input_ids, self.table).float()

    def project_pieces(self, input_ids: Tensor, which: str) -> Tensor:  # (B, T) -> (B, T, C)
        """An encoder's input rows: the table, or its projection (folded, or computed)."""
        folded = getattr(self, f"folded_{which}", None)
        if folded is not None:
            return nn.functional.embedding(input_ids, folded)
        proj = self._projection(which)
        x = self.embed_pieces(input_ids)
        return x if proj is None else proj(x)

    def tag_inputs(self, input_ids: Tensor, case_ids: Tensor) -> Tensor:
        """What the tagger GRU reads per piece, (B, T, C): table rows, case and lexicon rows."""
        parts = [self.project_pieces(input_ids, "tag"), self.case(case_ids)]
        if self.cfg.lex_rows:
            lex = self.lex_index[input_ids]  # (B, T)
            if self.training:
                rare = torch.rand(lex.shape, device=lex.device) < self.cfg.lex_dropout
                lex = torch.where(rare & (lex > 0), torch.ones_like(lex), lex)
            parts.append(self.lex(lex))
        return torch.cat(parts, dim=-1)

    def encode(self, input_ids: Tensor, case_ids: Tensor, lengths: Tensor) -> Tensor:
        """The tagger's contextual piece states, (B, T, 2H)."""
        x = self.tag_inputs(input_ids, case_ids)
        return self.drop(self.tagger(self.drop(x), lengths))

    def morph_states(self, h: Tensor, x: Tensor, lengths: Tensor) -> Tensor:
        """The morphology layer over the tagger's states `h` and inputs `x`, (B, T, 2M)."""
        assert self.morph is not None
        both = torch.cat([h, x], dim=-1)
        return self.drop(
            self.morph(both if self.morph_in is None else self.morph_in(both), lengths)
        )

    def tag(self, input_ids: Tensor, case_ids: Tensor, lengths: Tensor) -> tuple[Tensor, ...]:
        """Per-piece logits of each head, in head order: (B, T, size) each; then, with a parsing
        layer, its per-piece features (B, T, ParseLayer.width)."""
        x = self.tag_inputs(input_ids, case_ids)
        h = self.drop(self.tagger(self.drop(x), lengths))
        m = self.morph_states(h, x, lengths) if self.morph is not None else None
        on_morph = {hd["name"] for hd in self.cfg.head_list() if hd.get("layer") == "morph"}
        heads = [getattr(self, name)(m if name in on_morph else h) for name in self.head_names]
        if self.parser is not None:
            both = torch.cat([h, x], dim=-1)
            heads.append(self.parser.graph_features(both, lengths))
        return tuple(heads)

    def sentence(self, input_ids: Tensor, lengths: Tensor) -> Tensor:  # -> (B, sent_dim)
        assert self.sent is not None and self.sent_proj is not None
        h = self.sent(self.project_pieces(input_ids, "sent"), lengths)  # (B, T, 2H), zero at pads
        return self.sent_proj(masked_mean_max(h, lengths))

    def forward(self, input_ids: Tensor, case_ids: Tensor, lengths: Tensor):
        """The graph's outputs: each head's logits, then the embedding if there is an encoder."""
        heads = self.tag(input_ids, case_ids, lengths)
        if self.sent is None:
            return heads
        return (*heads, self.sentence(input_ids, lengths))

    def output_names(self) -> list[str]:
        """The exported graph's output names, in `forward`'s order."""
        parse = ["parse_features"] if self.parser is not None else []
        embed = ["embedding"] if self.sent is not None else []
        return [f"{name}_logits" for name in self.head_names] + parse + embed


class ParseLayer(nn.Module):
    """A dependency parsing layer over the tagger's states and inputs: a BiGRU, then Dozat &
    Manning's (2017) biaffine arc scorer and a relation classifier on the dependent and its head.

    score(i -> j) = a_i U h_j + h_j . b, where a and h are word i's dependent and word j's head
    arc features, and the root has a learned head vector; the relation of i under j is
    W relu(r_i + r'_j) + c. A word's features are its first and last pieces' summed. The graph
    answers per piece what is linear in a word's pieces (`graph_features`: a U, h, h . b, r,
    r'); the decoder (app.model.parse) does the rest with `root`, `rel_root` and `rel_out`,
    which model.json carries.
    """

    def __init__(self, width: int, input: int, hidden: int, layers: int, arc: int, rel: int,
                 dropout: float, n_rels: int):  # fmt: skip
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(width, input)
        self.gru = PackedBiGRU(input, hidden, layers, dropout)
        self.arc_dep, self.arc_head = nn.Linear(2 * hidden, arc), nn.Linear(2 * hidden, arc)
        self.rel_dep, self.rel_head = nn.Linear(2 * hidden, rel), nn.Linear(2 * hidden, rel)
        self.arc_u = nn.Parameter(torch.zeros(arc, arc))
        self.arc_b = nn.Parameter(torch.zeros(arc))
        self.root = nn.Parameter(torch.randn(arc) * 0.1)  # the root's head features
        self.rel_root = nn.Parameter(torch.randn(rel) * 0.1)
        self.rel_out = nn.Linear(rel, n_rels)

    def pieces(self, states: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        """Per-piece features, each linear in what a word sums."""
        g = self.drop(self.gru(self.drop(self.proj(self.drop(states))), lengths))
        dep = self.drop(nn.functional.elu(self.arc_dep(g)))
        head = self.drop(nn.functional.elu(self.arc_head(g)))
        return {
            "arc_dep": dep @ self.arc_u,
            "arc_head": head,
            "arc_bias": (head @ self.arc_b[:, None])[..., 0],  # no squeeze: it exports an If
            "rel_dep": self.rel_dep(g),
            "rel_head": self.rel_head(g),
        }

    def graph_features(self, states: Tensor, lengths: Tensor) -> Tensor:
        """`pieces` as one (B, T, 2 arc + 1 + 2 rel) tensor, in that order: the graph's output."""
        p = self.pieces(states, lengths)
        parts = [p["arc_dep"], p["arc_head"], p["arc_bias"].unsqueeze(-1), p["rel_dep"],
                 p["rel_head"]]  # fmt: skip
        return torch.cat(parts, dim=-1)

    def arcs(self, w: dict[str, Tensor]) -> Tensor:
        """(B, W, W + 1) scores of each word's head from word features; column 0 is the root."""
        B = w["arc_head"].shape[0]
        heads = torch.cat([self.root.expand(B, 1, -1), w["arc_head"]], 1)  # (B, W + 1, arc)
        bias = torch.cat([(self.root @ self.arc_b).expand(B, 1), w["arc_bias"]], 1)
        return w["arc_dep"] @ heads.transpose(1, 2) + bias[:, None, :]

    def rels(self, w: dict[str, Tensor], heads: Tensor) -> Tensor:
        """(B, W, n_rels) relation scores of each word under `heads` (B, W), 0 the root."""
        B = heads.shape[0]
        rh = torch.cat([self.rel_root.expand(B, 1, -1), w["rel_head"]], 1)
        under = rh.gather(1, heads.clamp(min=0).unsqueeze(-1).expand(-1, -1, rh.shape[-1]))
        return self.rel_out(self.drop(nn.functional.relu(w["rel_dep"] + under)))
