"""SequenceNet: input encoder → recurrent cell or transformer → masked pooling → head, as a
plain nn.Module.

Padding never changes a sequence's output. The forward direction is causal, so steps after a
sequence's end cannot reach its real steps; the backward direction runs the same causal cell
over each sequence reversed *within its own length* (`reverse_padded`), so it starts at the
last real step, not at the padding. Pooling masks padded steps. No PackedSequence is used, so
the graph that ONNX runs is the one that was trained.

Regularisation acts in training only, so eval and the exported graph are the plain cells:
`dropout` on the cells' inputs (a fresh mask per step, or with `locked_dropout` one per
sequence) and before the head; `recurrent_dropout` drops hidden-to-hidden weights, one mask
per batch (weight-drop, `SequenceNet.run_cell`).

    net = SequenceNet(n_features=12, n_outputs=9, cell="lstm", hidden_size=64)
    logits = net(x, lengths)          # x (B, T, F) float32, lengths (B,) int64 → (B, 9)

    text = SequenceNet(0, 2, vocab_size=20000, embedding_dim=128)
    logits = text(tokens, lengths)    # tokens (B, T) int64, 0 = padding → (B, 2)

    forecaster = SequenceNet(3, 1, horizon=12)
    forecast = forecaster(x, lengths) # x (B, T, 3) → (B, 12, 1): 12 steps of 1 target

    tagger = SequenceNet(0, 7, vocab_size=20000, per_step=True, crf=True, char_vocab_size=90)
    scores = tagger(tokens, lengths, chars)  # chars (B, T, W) int64 → (B, T, 7), 0 at padding
    scores = tagger(packed, lengths)         # packed (B, T, 1 + W): word id, then its chars

Per-step output (`per_step=True`, for tagging) skips pooling and applies the head to every
step's state: one output per input step, so the input encoder must keep the time axis (a
strided conv is refused). The bidirectional states are already back in step order
(`reverse_padded` undoes the reversal), so step t's output reads both directions at step t.
Padded steps' outputs are set to 0. Token input may come packed, `(B, T, 1 + W)`: column 0
the word id, columns 1..W its character ids, which is how the ONNX graph keeps its two inputs
(`tokens`, `lengths`) for a tagger; the network splits it, and one without character
features reads column 0 only. With `crf=True` the network also holds a linear-chain
CRF (`seqops.model.crf`) whose transition scores the tagging objective trains and the
exported graph outputs; the network's own output stays the per-step emission scores.

`cell="transformer"` replaces the recurrent cells by `num_layers` pre-norm transformer
encoder layers (`seqops.model.transformer`) of width `hidden_size` and `heads` attention
heads, with sinusoidal positions; input encoders, pooling and heads are the same (token
embeddings of another size are projected to `hidden_size`). Attention never reads a padded
key, so padding never changes a real step's output. The causal rule: with
`bidirectional=False` the attention is causal (step t reads steps 0..t, as a forward
recurrent cell does), which is what a language model or a unidirectional tagger needs; with
`bidirectional=True` every step reads the whole sequence. The output width is `hidden_size`
either way. Weight-drop (`recurrent_dropout`) and `locked_dropout` act on recurrent cells
and are refused; `forward_with_state` carries no state (each window is read alone), and a
transformer does not stream (`seqops.model.streaming`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from seqops.config import ModelConfig
from seqops.model.crf import LinearChainCRF
from seqops.model.kernels import RandomKernels
from seqops.model.ngrams import NgramPath
from seqops.model.transformer import TransformerEncoder

#: Architecture defaults come from the config's fields (the one place they are declared).
_DEFAULT = ModelConfig()

#: The ModelConfig keys every SequenceNet reads; a task adds its own (a vocabulary, a horizon).
ARCHITECTURE = (
    "cell",
    "hidden_size",
    "num_layers",
    "heads",
    "bidirectional",
    "dropout",
    "recurrent_dropout",
    "locked_dropout",
    "pooling",
    "encoder",
    "encoder_kernel",
    "encoder_stride",
    "encoder_layers",
    "encoder_norm",
)


def architecture(model: ModelConfig, longest: int = 0) -> dict[str, object]:
    """SequenceNet keyword arguments from the `model` section; `encoder: auto` becomes
    `conv` or `linear` by the longest training sequence (`longest` steps)."""
    args = {key: getattr(model, key) for key in ARCHITECTURE}
    args["encoder"] = model.input_encoder(longest)
    return args


_CELLS: dict[str, Callable[..., nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
#: The cell that is not recurrent (see the module docstring).
TRANSFORMER = "transformer"

#: A unidirectional network's recurrent state between calls: `(h, c)` for an LSTM, `(h,)` for
#: a GRU or RNN, each `(num_layers, B, H)` (`SequenceNet.forward_with_state`).
RecurrentState = tuple[torch.Tensor, ...]


def step_mask(lengths: torch.Tensor, time: int) -> torch.Tensor:
    """`(B, T)` boolean mask, True on real steps."""
    steps = torch.arange(time, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's first `length` steps in place; padding stays at the end."""
    time = x.shape[1]
    steps = torch.arange(time, device=x.device).unsqueeze(0)  # (1, T)
    index = lengths.unsqueeze(1) - 1 - steps  # (B, T)
    index = torch.where(index >= 0, index, steps.expand_as(index))
    return torch.gather(x, 1, index.unsqueeze(-1).expand_as(x))


class CharacterCNN(nn.Module):
    """One vector per word from its characters: a character embedding, a convolution over
    each word's characters and a max over its real ones (Ma & Hovy 2016), so a tagger sees
    prefixes, suffixes and capitalisation of words its vocabulary does not hold.

    Input `(B, T, W)` int64 character ids per word, 0 = padding (after a word's characters,
    and whole padded words); output `(B, T, filters)`, 0 for a padded word. Padding never
    changes a word's vector: the padding character embeds to zeros, as the convolution's
    own zero padding at a word's edges does, and the max skips padded characters."""

    def __init__(self, vocab_size: int, embedding_dim: int, filters: int, kernel: int) -> None:
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"char_kernel must be odd (centred on a character), got {kernel}")
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.conv = nn.Conv1d(embedding_dim, filters, kernel, padding=kernel // 2)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        batch, time, width = chars.shape
        words = chars.reshape(batch * time, width)  # (N, W)
        h = self.embedding(words).transpose(1, 2)  # (N, E, W)
        h = torch.tanh(self.conv(h)).transpose(1, 2)  # (N, W, F)
        real = (words != 0).unsqueeze(-1)  # (N, W, 1)
        h = torch.where(real, h, torch.full_like(h, float("-inf"))).amax(dim=1)  # (N, F)
        h = torch.where(real.any(dim=1), h, torch.zeros_like(h))  # padded words: 0, not -inf
        return h.view(batch, time, -1)  # (B, T, F)


class WordShape(nn.Module):
    """Orthographic features of each word, read from its character ids (the casing a
    lower-cased word vocabulary drops, and the marks of user text): capitalised, all
    capitals, a capital after a lower-case letter's word start (`iPhone`, `McDonald`), has a
    digit, all digits, starts with `@` (a mention), starts with `#` (a hashtag), neither
    letter nor digit. Each is 0 or 1, concatenated to the word's embedding (orthographic
    features, as in Aguilar et al. 2017); computed in the graph from a per-character table
    built from `chars`, the character vocabulary (`chars[i]` has id i), so the exported
    input stays the packed ids.

    Input `(B, T, W)` character ids, 0 = padding, 1 = unknown (no class); output `(B, T, 8)`
    float, all 0 for a padded word."""

    FEATURES = (
        "capitalised",
        "all_caps",
        "inner_caps",
        "has_digit",
        "all_digits",
        "mention",
        "hashtag",
        "no_letter_or_digit",
    )

    def __init__(self, chars: list[str]) -> None:
        super().__init__()
        rows = [
            [c.isupper(), c.islower(), c.isdigit(), c == "@", c == "#"]
            if len(c) == 1
            else [False] * 5  # [PAD], [UNK]
            for c in chars
        ]
        # Not persistent: rebuilt from `chars`, a network argument the checkpoint keeps.
        self.register_buffer("table", torch.tensor(rows, dtype=torch.float32), persistent=False)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        table: torch.Tensor = self.table  # type: ignore[assignment]
        f = table[chars]  # (B, T, W, 5)
        upper, lower, digit = f[..., 0], f[..., 1], f[..., 2]  # (B, T, W)
        first = f[:, :, 0]  # (B, T, 5): the first character's classes
        n_real = (chars != 0).to(f.dtype).sum(dim=-1)  # (B, T)
        n_upper, n_lower, n_digit = upper.sum(dim=-1), lower.sum(dim=-1), digit.sum(dim=-1)
        features = [
            first[..., 0],
            (n_upper > 0) & (n_lower == 0),
            (upper[..., 1:].sum(dim=-1) > 0) & (n_lower > 0),
            n_digit > 0,
            (n_digit == n_real) & (n_real > 0),
            first[..., 3],
            first[..., 4],
            (n_upper + n_lower + n_digit == 0) & (n_real > 0),
        ]
        return torch.stack([x.to(f.dtype) for x in features], dim=-1)  # (B, T, 8)


class SequenceNet(nn.Module):
    """See the module docstring. Off by default, for tagging: `per_step` (one output per
    step), `crf` (a CRF over those outputs, needs `per_step`) and, for token input, the
    character features of `CharacterCNN` (`char_vocab_size` character ids; `char_dim`,
    `char_filters`, `char_kernel` its sizes), concatenated to each word's embedding and read
    from the `chars` argument of `forward`; with `shape_chars` (the character vocabulary),
    the `WordShape` features of those characters too."""

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        *,
        cell: str = _DEFAULT.cell,
        hidden_size: int = _DEFAULT.hidden_size,
        num_layers: int = _DEFAULT.num_layers,
        heads: int = _DEFAULT.heads,
        bidirectional: bool = _DEFAULT.bidirectional,
        dropout: float = _DEFAULT.dropout,
        recurrent_dropout: float = _DEFAULT.recurrent_dropout,
        locked_dropout: bool = _DEFAULT.locked_dropout,
        pooling: str = _DEFAULT.pooling,
        vocab_size: int | None = None,
        embedding_dim: int = _DEFAULT.embedding_dim,
        horizon: int | None = None,
        encoder: str = _DEFAULT.input_encoder(0),  # `auto` is resolved by `architecture`
        encoder_kernel: int = _DEFAULT.encoder_kernel,
        encoder_stride: int = _DEFAULT.encoder_stride,
        encoder_layers: int = _DEFAULT.encoder_layers,
        encoder_norm: bool = False,  # not the config default: older checkpoints have none
        per_step: bool = False,
        crf: bool = False,
        char_vocab_size: int | None = None,
        char_dim: int = 30,
        char_filters: int = _DEFAULT.char_filters,
        char_kernel: int = 3,
        shape_chars: list[str] | None = None,
        word_dropout: float = 0.0,
        kernel_features: int = 0,
        kernel_length: int = 0,
        kernel_seed: int = 0,
        recurrent: bool = True,
        ngram_buckets: int = 0,
    ) -> None:
        super().__init__()
        if cell not in _CELLS and cell != TRANSFORMER:
            raise ValueError(f"cell must be one of {sorted([*_CELLS, TRANSFORMER])}, got {cell!r}")
        if cell == TRANSFORMER and (recurrent_dropout or locked_dropout):
            raise ValueError(
                "recurrent_dropout and locked_dropout act on recurrent cells: a transformer "
                "has none (set them to 0 and false)"
            )
        if pooling not in ("last", "mean", "max", "attention"):
            raise ValueError(f"unknown pooling {pooling!r}")
        if encoder not in ("linear", "conv"):
            raise ValueError(f"unknown encoder {encoder!r}")
        if encoder == "conv" and not 1 <= encoder_stride <= encoder_kernel:
            raise ValueError(f"need 1 <= encoder_stride <= encoder_kernel, got {encoder_stride}")
        if per_step and encoder == "conv" and encoder_stride != 1 and not vocab_size:
            raise ValueError(
                f"per-step output needs one encoder step per input step: encoder_stride must "
                f"be 1 with encoder conv (got {encoder_stride}), or use encoder linear"
            )
        if per_step and horizon is not None:
            raise ValueError("per-step output has no forecast horizon (horizon must be None)")
        if crf and not per_step:
            raise ValueError("crf needs per_step: a CRF scores one tag per step")
        if (char_vocab_size or shape_chars) and not vocab_size:
            raise ValueError(
                "char_vocab_size or shape_chars needs token input (vocab_size): chars are per word"
            )
        if kernel_features and (per_step or vocab_size or horizon is not None):
            raise ValueError(
                "kernel_features reads float inputs for one output per sequence (not per-step, "
                "token or forecast networks)"
            )
        if not recurrent and not kernel_features:
            raise ValueError(
                "recurrent=False keeps the kernel path alone: it needs kernel_features"
            )
        if ngram_buckets and (per_step or not vocab_size):
            raise ValueError(
                "ngram_buckets reads token ids for one output per sequence (text "
                "classification), not float inputs or per-step outputs"
            )
        # With `recurrent=False` the kernel path is the whole output: the recurrent layers
        # below stay built (the same random numbers drawn) but are never run.
        self.recurrent = recurrent
        self.pooling = pooling
        self.bidirectional = bidirectional
        self.transformer: TransformerEncoder | None = None
        self.hidden_size = hidden_size
        self.vocab_size = vocab_size
        if not 0.0 <= word_dropout < 1.0 or (word_dropout and not vocab_size):
            raise ValueError(f"word_dropout needs token input and 0 <= p < 1, got {word_dropout}")
        self.word_dropout = word_dropout
        # A transformer reads both ways in one stream of width hidden_size.
        directions = 2 if bidirectional and cell != TRANSFORMER else 1
        self.directions = directions
        # Input encoder: token ids through an embedding whose padding row stays zero, or
        # float features through a linear layer.
        self.embedding = (
            nn.Embedding(vocab_size, embedding_dim, padding_idx=0) if vocab_size else None
        )
        if self.embedding is not None:
            # Small random vectors (the scale of pretrained ones, not N(0, 1)): a rare word
            # starts near zero instead of as loud noise the recurrent cell can memorise.
            nn.init.normal_(self.embedding.weight, std=0.1)
            with torch.no_grad():
                self.embedding.weight[0].zero_()
        self.characters = (
            CharacterCNN(char_vocab_size, char_dim, char_filters, char_kernel)
            if char_vocab_size
            else None
        )
        # Float features: a linear layer per step, or a strided Conv1d over time whose
        # output step j reads input steps [j*s, j*s + k) and so shortens a sequence to
        # ceil(T / s) steps (the recurrent cell then runs s times fewer steps).
        self.stride = encoder_stride if encoder == "conv" and not vocab_size else 1
        self.encoder: nn.Module | None = None
        if not vocab_size:
            self.encoder = (
                nn.Conv1d(n_features, hidden_size, encoder_kernel, stride=encoder_stride)
                if encoder == "conv"
                else nn.Linear(n_features, hidden_size)
            )
        # `encoder_layers - 1` more convolutions (stride 1) on top of the strided one.
        self.encoder_stack = nn.ModuleList(
            nn.Conv1d(hidden_size, hidden_size, encoder_kernel)
            for _ in range(encoder_layers - 1 if isinstance(self.encoder, nn.Conv1d) else 0)
        )
        convolutions = 1 + len(self.encoder_stack) if isinstance(self.encoder, nn.Conv1d) else 0
        self.encoder_norms = nn.ModuleList(
            nn.BatchNorm1d(hidden_size) for _ in range(convolutions if encoder_norm else 0)
        )
        # Created after the character CNN (it has no parameters): the same random draws.
        self.shape = WordShape(shape_chars) if shape_chars else None
        first = embedding_dim if vocab_size else hidden_size
        if self.characters is not None:
            first += char_filters
        if self.shape is not None:
            first += len(WordShape.FEATURES)
        # Token embeddings (with character features) of another width than the transformer's.
        self.projection = (
            nn.Linear(first, hidden_size) if cell == TRANSFORMER and first != hidden_size else None
        )
        if cell == TRANSFORMER:
            self.transformer = TransformerEncoder(
                hidden_size, heads, num_layers, dropout, causal=not bidirectional
            )
        rnn = _CELLS.get(cell, nn.LSTM)
        cells = 0 if cell == TRANSFORMER else num_layers
        # One single-layer, single-direction cell per (layer, direction): stacking by hand
        # lets the backward direction reverse within each length (see module docstring).
        self.forward_cells = nn.ModuleList(
            rnn(first if i == 0 else hidden_size * directions, hidden_size, batch_first=True)
            for i in range(cells)
        )
        self.backward_cells = nn.ModuleList(
            rnn(first if i == 0 else hidden_size * directions, hidden_size, batch_first=True)
            for i in range(cells if bidirectional else 0)
        )
        self.dropout = nn.Dropout(dropout)
        # Plain attributes, not modules: a model without them has today's state_dict.
        self.recurrent_dropout = recurrent_dropout
        self.locked_dropout = locked_dropout
        out = hidden_size * directions
        self.per_step = per_step
        self.attention = nn.Linear(out, 1) if pooling == "attention" and not per_step else None
        # Forecasting: one output per (future step, target) at once (direct multi-step).
        self.horizon = horizon
        self.head = nn.Linear(out, n_outputs * (horizon or 1))
        if horizon is not None:
            # The forecast's weight against the drift forecast of the (differenced) series,
            # set on validation after training (`shrink_forecast`); 1 = the network alone.
            self.forecast_scale = nn.Parameter(torch.ones(()), requires_grad=False)
        # Created last, so the layers above draw the same random numbers with or without it.
        self.crf = LinearChainCRF(n_outputs) if crf else None
        # Random convolutional kernel features and their ridge head (`seqops.model.kernels`):
        # the head is fitted in closed form before training (`fit_kernel_path`) and frozen; a
        # learned scale weighs it, and the recurrent head starts at zero, so training starts
        # from the kernel model.
        self.kernels: RandomKernels | None = None
        self.kernel_head: nn.Linear | None = None
        if kernel_features:
            self.kernels = RandomKernels(n_features, kernel_features, kernel_length, kernel_seed)
            self.kernel_head = nn.Linear(self.kernels.n_out, n_outputs).requires_grad_(False)
            self.kernel_scale = nn.Parameter(torch.ones(()))
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        # For token ids, a linear n-gram model (`seqops.model.ngrams`), fitted by logistic
        # regression before training and frozen; silent (weight 0) while the recurrent path
        # trains; the two paths' weights are set on validation afterwards (`mix_ngram_path`).
        self.ngrams: NgramPath | None = None
        if ngram_buckets:
            assert vocab_size is not None
            self.ngrams = NgramPath(vocab_size, ngram_buckets, n_outputs)
            self.ngram_scale = nn.Parameter(torch.zeros(()), requires_grad=False)
            self.recurrent_scale = nn.Parameter(torch.ones(()), requires_grad=False)

    def encoded_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Real steps per sequence after the input encoder: `ceil(length / stride)`."""
        if self.stride == 1:
            return lengths
        return torch.div(lengths + self.stride - 1, self.stride, rounding_mode="floor")

    def embed(
        self, x: torch.Tensor, lengths: torch.Tensor, chars: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The input encoder: `(B, T', H)` inputs of the first recurrent layer."""
        if self.training and self.word_dropout > 0:
            x = self.drop_words(x)
        if self.characters is not None or self.shape is not None:
            assert self.embedding is not None
            if chars is None:
                raise ValueError("this network reads character ids: pass chars (B, T, W)")
            parts = [self.embedding(x)]
            if self.characters is not None:
                parts.append(self.characters(chars))
            if self.shape is not None:
                parts.append(self.shape(chars))
            return self.step_dropout(torch.cat(parts, dim=-1))  # (B, T, E + filters + shapes)
        if self.embedding is not None:
            return self.step_dropout(self.embedding(x))  # (B, T) ids → (B, T, E)
        assert self.encoder is not None
        if isinstance(self.encoder, nn.Linear):
            return torch.relu(self.encoder(x))  # (B, T, H)
        # Zero the padding, then right-pad k - 1 zeros: a window running past a sequence's
        # end reads zeros whether the sequence is alone or padded inside a batch.
        for i, conv in enumerate([self.encoder, *self.encoder_stack]):
            assert isinstance(conv, nn.Conv1d)
            mask = step_mask(lengths if i == 0 else self.encoded_lengths(lengths), x.shape[1])
            x = torch.where(mask.unsqueeze(-1), x, torch.zeros_like(x)).transpose(1, 2)
            x = nn.functional.pad(x, (0, conv.kernel_size[0] - 1))  # (B, C, T + k - 1)
            x = conv(x)
            if self.encoder_norms:
                x = self.encoder_norms[i](x)
            x = torch.relu(x).transpose(1, 2)  # (B, ceil(T / s), H)
        return x

    def drop_words(self, x: torch.Tensor) -> torch.Tensor:
        """Word dropout (Lample et al. 2016), training only: each real word id (above 1) becomes
        1, `[UNK]`, with probability `word_dropout`, so the `[UNK]` vector that unseen words
        get at test time is trained in many contexts. Padding (0) stays; the characters of a
        dropped word stay too, so its spelling still reaches the model."""
        drop = (torch.rand(x.shape, device=x.device) < self.word_dropout) & (x > 1)
        return torch.where(drop, torch.ones_like(x), x)

    def encode(
        self, x: torch.Tensor, lengths: torch.Tensor, chars: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-step states `(B, T', H * directions)` (`T' = ceil(T / stride)`, see
        `encoded_lengths`), in step order; padded steps hold unspecified values."""
        return self.encode_from(x, lengths, chars, keep_state=False)[0]

    def encode_from(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor,
        chars: torch.Tensor | None = None,
        state: RecurrentState | None = None,
        *,
        keep_state: bool = True,
    ) -> tuple[torch.Tensor, RecurrentState]:
        """`encode` from an initial recurrent `state` (None: zeros), and the state after the
        time axis's last step (empty without `keep_state`, or for a bidirectional network)."""
        h = self.embed(x, lengths, chars)
        lengths = self.encoded_lengths(lengths)
        if self.transformer is not None:
            if self.projection is not None:
                h = self.projection(h)  # (B, T, H)
            return self.transformer(h, lengths), ()  # (B, T, H)
        finals: list[tuple[torch.Tensor, ...]] = []
        for i, forward_cell in enumerate(self.forward_cells):
            if i > 0:
                h = self.step_dropout(h)
            hx = None if state is None else _layer_state(state, i)
            fwd, final = self.run_cell_from(forward_cell, h, hx)  # (B, T, H)
            if keep_state:
                finals.append(final)
            if self.bidirectional:
                bwd = self.run_cell(self.backward_cells[i], reverse_padded(h, lengths))
                h = torch.cat([fwd, reverse_padded(bwd, lengths)], dim=-1)  # (B, T, 2H)
            else:
                h = fwd
        if self.bidirectional or not keep_state:
            return h, ()
        return h, tuple(torch.cat(parts, dim=0) for parts in zip(*finals, strict=True))

    def step_dropout(self, h: torch.Tensor) -> torch.Tensor:
        """Dropout on a cell's input `(B, T, D)`: a fresh mask per step, or with
        `locked_dropout` one mask per sequence shared by all its steps (variational dropout,
        Gal & Ghahramani 2016). Identity in eval."""
        if not self.locked_dropout:
            return self.dropout(h)
        # dropout1d zeroes whole channels of (B, C, L): with time as L, one mask per sequence.
        per_channel = h.transpose(1, 2)  # (B, D, T)
        return nn.functional.dropout1d(per_channel, self.dropout.p, self.training).transpose(1, 2)

    def run_cell(self, cell: nn.Module, h: torch.Tensor) -> torch.Tensor:
        """`cell`'s per-step outputs over `h`. In training with `recurrent_dropout`, through
        weight-drop: DropConnect on the hidden-to-hidden matrix, one mask per call (per
        batch), as in AWD-LSTM (Merity et al. 2018). The fused cell still runs; the parameter
        keeps the raw weights, so eval (and the exported graph) is the plain cell."""
        return self.run_cell_from(cell, h)[0]

    def run_cell_from(
        self, cell: nn.Module, h: torch.Tensor, hx: RecurrentState | None = None
    ) -> tuple[torch.Tensor, RecurrentState]:
        """`run_cell` from the initial state `hx` (None: zeros; `(h, c)` for an LSTM, `(h,)`
        otherwise, each `(1, B, H)`), also returning the state after the last step."""
        args = (h,) if hx is None else (h, hx if len(hx) == 2 else hx[0])
        if self.training and self.recurrent_dropout > 0:
            raw = cell.get_parameter("weight_hh_l0")
            dropped = nn.functional.dropout(raw, self.recurrent_dropout, training=True)
            out, final = torch.func.functional_call(cell, {"weight_hh_l0": dropped}, args)
        else:
            out, final = cell(*args)
        return out, (tuple(final) if isinstance(final, tuple) else (final,))

    def pool(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """One vector per sequence `(B, H * directions)` from real steps only."""
        mask = step_mask(lengths, h.shape[1]).unsqueeze(-1)  # (B, T, 1)
        if self.pooling == "last":
            last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, h.shape[-1])
            at_end = torch.gather(h, 1, last).squeeze(1)  # (B, D)
            if self.directions == 1:
                return at_end
            # The backward direction has read the whole sequence by step 0.
            return torch.cat([at_end[:, : self.hidden_size], h[:, 0, self.hidden_size :]], dim=-1)
        if self.pooling == "mean":
            total = torch.where(mask, h, torch.zeros_like(h)).sum(dim=1)
            return total / lengths.unsqueeze(-1).to(h.dtype)
        if self.pooling == "max":
            return torch.where(mask, h, torch.full_like(h, float("-inf"))).amax(dim=1)
        assert self.attention is not None
        scores = self.attention(h)  # (B, T, 1)
        scores = torch.where(mask, scores, torch.full_like(scores, float("-inf")))
        weights = torch.softmax(scores, dim=1)
        return (torch.where(mask, h, torch.zeros_like(h)) * weights).sum(dim=1)

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, chars: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`(B, C)` per sequence, `(B, H, K)` forecasts, or with `per_step` `(B, T, C)`;
        `chars` `(B, T, W)` only for a network with character features, or packed into `x`
        (token input `(B, T, 1 + W)`, see the module docstring)."""
        if self.embedding is not None and x.dim() == 3:  # packed: word id, then its characters
            reads_chars = self.characters is not None or self.shape is not None
            x, chars = x[..., 0], (x[..., 1:] if reads_chars else None)
        if self.per_step:
            h = self.encode(x, lengths, chars)  # (B, T, D)
            out = self.head(self.dropout(h))  # (B, T, C)
            real = step_mask(lengths, out.shape[1]).unsqueeze(-1)  # (B, T, 1)
            return torch.where(real, out, torch.zeros_like(out))
        if not self.recurrent:
            assert self.kernels is not None and self.kernel_head is not None
            return self.kernel_scale * self.kernel_head(self.kernels(x, lengths))
        pooled = self.pool(self.encode(x, lengths, chars), self.encoded_lengths(lengths))  # (B, D)
        out = self.head(self.dropout(pooled))  # (B, C) or (B, H * K)
        if self.kernels is not None:
            assert self.kernel_head is not None
            out = out + self.kernel_scale * self.kernel_head(self.kernels(x, lengths))
        if self.ngrams is not None:
            out = self.recurrent_scale * out + self.ngram_scale * self.ngrams(x, lengths)
        if self.horizon is None:
            return out
        return (self.forecast_scale * out).view(out.shape[0], self.horizon, -1)  # (B, H, K)

    def forward_with_state(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor,
        state: RecurrentState | None = None,
        chars: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, RecurrentState]:
        """`forward` of a unidirectional per-step network started from `state` (None: zeros),
        and the state after the time axis's last step: a language model trained with
        truncated BPTT carries it from one window to the next. Pass windows without padding
        (every length T) when carrying the state on. Kept apart from `forward`, whose
        signature the ONNX exporter reads: the exported graph's inputs stay `x`, `lengths`.
        A (causal) transformer carries no state: it returns `()` and reads each window alone."""
        if not self.per_step or self.bidirectional or self.stride != 1:
            raise ValueError(
                "a recurrent state is carried by unidirectional per-step networks only"
            )
        if self.embedding is not None and x.dim() == 3:  # packed: word id, then its characters
            reads_chars = self.characters is not None or self.shape is not None
            x, chars = x[..., 0], (x[..., 1:] if reads_chars else None)
        h, final = self.encode_from(x, lengths, chars, state)  # (B, T, H)
        out = self.head(self.dropout(h))  # (B, T, C)
        real = step_mask(lengths, out.shape[1]).unsqueeze(-1)  # (B, T, 1)
        return torch.where(real, out, torch.zeros_like(out)), final


def fitted_splits(net: nn.Module) -> tuple[str, ...]:
    """The labelled splits a trained network (or ensemble) learned from: the training split,
    and the validation split too for kernel-only networks (`recurrent=False`), whose ridge
    model the train stage refits on both (`seqops.model.training.refit_kernel_model`). A
    classical baseline beside the network is fitted on the same splits."""
    members = list(net.members) if isinstance(net, EnsembleNet) else [net]
    kernel_only = all(isinstance(m, SequenceNet) and not m.recurrent for m in members)
    return ("train", "val") if kernel_only else ("train",)


def _layer_state(state: RecurrentState, layer: int) -> RecurrentState:
    """Layer `layer`'s part of a network's state: each tensor's `(1, B, H)` slice."""
    return tuple(s[layer : layer + 1] for s in state)


class EnsembleNet(nn.Module):
    """Members with one input and output contract, answering as one network (one ONNX graph).

    Classifiers average their members' class probabilities and answer the log of the mean, a
    logit vector whose softmax is that mean (`logsumexp` of the log-softmaxes minus log N);
    regressors and forecasters average their outputs.

        ensemble = EnsembleNet([net_a, net_b, net_c], probabilities=True)
        logits = ensemble(x, lengths)     # softmax(logits) = mean of the members' softmax
    """

    def __init__(self, members: list[SequenceNet], *, probabilities: bool) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.probabilities = probabilities

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        outputs = torch.stack([member(x, lengths) for member in self.members])  # (N, B, ...)
        if not self.probabilities:
            return outputs.mean(dim=0)
        log_probs = torch.log_softmax(outputs, dim=-1)
        return torch.logsumexp(log_probs, dim=0) - math.log(len(self.members))
