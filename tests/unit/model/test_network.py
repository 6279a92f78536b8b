import itertools

import pytest
import torch

from seqops.config import ModelConfig
from seqops.model.network import SequenceNet, architecture, reverse_padded

CELLS = ("lstm", "gru", "rnn")
POOLINGS = ("last", "mean", "max", "attention")


def _padded(seqs: list[torch.Tensor], time: int, fill: float) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.full((len(seqs), time, seqs[0].shape[1]), fill)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = s
    return x, torch.tensor([len(s) for s in seqs])


@pytest.mark.parametrize(
    ("cell", "bidirectional", "pooling"), list(itertools.product(CELLS, (False, True), POOLINGS))
)
def test_padding_never_changes_a_sequences_output(
    cell: str, bidirectional: bool, pooling: str
) -> None:
    torch.manual_seed(0)
    net = SequenceNet(
        5, 3, cell=cell, hidden_size=16, num_layers=2, bidirectional=bidirectional, pooling=pooling
    ).eval()
    seqs = [torch.randn(n, 5) for n in (7, 3, 5)]
    longest = max(len(s) for s in seqs)
    # Padding to three times the longest length, with large non-zero garbage in the padding.
    x, lengths = _padded(seqs, 3 * longest, fill=37.0)
    with torch.no_grad():
        batched = net(x, lengths)
        for i, s in enumerate(seqs):
            alone = net(s.unsqueeze(0), torch.tensor([len(s)]))
            torch.testing.assert_close(batched[i], alone[0], atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("kernel", "stride", "bidirectional", "pooling"),
    [(8, 4, True, "mean"), (8, 4, False, "last"), (3, 3, True, "last"), (5, 2, True, "max")],
)
@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("norm", [False, True])
def test_conv_encoder_ignores_padding_and_shortens_time(
    kernel: int, stride: int, bidirectional: bool, pooling: str, layers: int, norm: bool
) -> None:
    torch.manual_seed(0)
    net = SequenceNet(
        5,
        3,
        hidden_size=16,
        bidirectional=bidirectional,
        pooling=pooling,
        encoder="conv",
        encoder_kernel=kernel,
        encoder_stride=stride,
        encoder_layers=layers,
        encoder_norm=norm,
    )
    assert len(net.encoder_norms) == (layers if norm else 0)
    randomise_norms(net)
    net.eval()
    # Lengths that are and are not multiples of the stride, and shorter than the kernel.
    seqs = [torch.randn(n, 5) for n in (17, 1, 8, 3)]
    x, lengths = _padded(seqs, 3 * 17, fill=37.0)
    with torch.no_grad():
        batched = net(x, lengths)
        for i, s in enumerate(seqs):
            alone = net(s.unsqueeze(0), torch.tensor([len(s)]))
            torch.testing.assert_close(batched[i], alone[0], atol=1e-6, rtol=0)
        states = net.encode(x, lengths)
    assert states.shape[1] == -(-3 * 17 // stride)  # ceil(T / stride) steps reach the cell
    assert net.encoded_lengths(lengths).tolist() == [-(-n // stride) for n in (17, 1, 8, 3)]


def randomise_norms(net: SequenceNet) -> None:
    """Batch-norm statistics and affine terms far from identity, as after training."""
    for norm in net.encoder_norms:
        assert isinstance(norm, torch.nn.BatchNorm1d)
        with torch.no_grad():
            norm.running_mean.uniform_(-2, 2)
            norm.running_var.uniform_(0.2, 3)
            norm.weight.uniform_(0.5, 2)
            norm.bias.uniform_(-1, 1)


def test_encoder_norm_trains_on_batch_statistics_and_is_off_for_old_checkpoints() -> None:
    torch.manual_seed(0)
    net = SequenceNet(2, 3, hidden_size=8, encoder="conv", encoder_norm=True)
    x, lengths = torch.randn(4, 40, 2) * 5 + 3, torch.full((4,), 40)
    net.train()(x, lengths)
    assert float(net.encoder_norms[0].running_mean.abs().sum()) > 0  # statistics were updated
    # A network built from a checkpoint's arguments without `encoder_norm` has no norm layers.
    assert len(SequenceNet(2, 3, encoder="conv").encoder_norms) == 0
    assert "encoder_norms.0.running_mean" in net.state_dict()


def test_conv_encoder_stride_beyond_kernel_is_rejected() -> None:
    with pytest.raises(ValueError, match="encoder_stride"):
        SequenceNet(5, 3, encoder="conv", encoder_kernel=2, encoder_stride=3)


def test_backward_direction_starts_at_the_last_real_step() -> None:
    torch.manual_seed(0)
    # One layer (SequenceNet's default was 1, now 2): the states compared are the first
    # layer's backward cell's.
    net = SequenceNet(
        4, 2, cell="gru", hidden_size=6, num_layers=1, bidirectional=True, pooling="last"
    ).eval()
    seq = torch.randn(5, 4)
    x, lengths = _padded([seq], 12, fill=0.0)
    with torch.no_grad():
        states = net.encode(x, lengths)  # (1, 12, 12)
        # Backward half at step 0 = the backward cell run over the sequence flipped in time.
        h = torch.relu(net.encoder(seq.flip(0))).unsqueeze(0)
        expected, _ = net.backward_cells[0](h)
    torch.testing.assert_close(states[0, 0, 6:], expected[0, -1], atol=1e-6, rtol=0)


def test_reverse_padded_keeps_padding_in_place() -> None:
    x = torch.arange(6.0).view(1, 6, 1)
    out = reverse_padded(x, torch.tensor([4]))
    assert out.flatten().tolist() == [3.0, 2.0, 1.0, 0.0, 4.0, 5.0]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 3])
def test_output_shape(bidirectional: bool, layers: int) -> None:
    net = SequenceNet(12, 9, hidden_size=10, num_layers=layers, bidirectional=bidirectional)
    out = net(torch.randn(4, 11, 12), torch.tensor([11, 3, 7, 1]))
    assert out.shape == (4, 9)


def test_rejects_unknown_cell_and_pooling() -> None:
    with pytest.raises(ValueError, match="cell must be one of"):
        SequenceNet(2, 2, cell="lstmm")
    with pytest.raises(ValueError, match="unknown pooling"):
        SequenceNet(2, 2, pooling="sum")


@pytest.mark.parametrize("cell", CELLS)
def test_overfits_one_tiny_batch(cell: str) -> None:
    torch.manual_seed(0)
    net = SequenceNet(3, 4, cell=cell, hidden_size=32, bidirectional=True, pooling="mean")
    x, y = torch.randn(8, 10, 3), torch.arange(8) % 4
    lengths = torch.tensor([10, 9, 8, 7, 6, 5, 4, 3])
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x, lengths), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    assert (net(x, lengths).argmax(-1) == y).all()


@pytest.mark.parametrize(
    ("cell", "bidirectional", "pooling"), list(itertools.product(CELLS, (False, True), POOLINGS))
)
def test_padding_never_changes_a_token_sequences_output(
    cell: str, bidirectional: bool, pooling: str
) -> None:
    torch.manual_seed(0)
    net = SequenceNet(
        0, 2, cell=cell, hidden_size=8, num_layers=2, bidirectional=bidirectional,
        pooling=pooling, vocab_size=30, embedding_dim=6,
    ).eval()  # fmt: skip
    seqs = [torch.randint(1, 30, (n,)) for n in (7, 3, 5)]
    time = 3 * max(len(s) for s in seqs)
    # Padding with real token ids, not only the padding id: masking must make it irrelevant.
    tokens = torch.full((len(seqs), time), 17, dtype=torch.int64)
    for i, s in enumerate(seqs):
        tokens[i, : len(s)] = s
    lengths = torch.tensor([len(s) for s in seqs])
    with torch.no_grad():
        batched = net(tokens, lengths)
        for i, s in enumerate(seqs):
            alone = net(s.unsqueeze(0), torch.tensor([len(s)]))
            torch.testing.assert_close(batched[i], alone[0], atol=1e-6, rtol=0)


def test_token_input_uses_an_embedding_with_a_zero_padding_row() -> None:
    net = SequenceNet(0, 2, vocab_size=30, embedding_dim=6, hidden_size=8)
    assert net.encoder is None and net.embedding is not None
    assert net.embedding.padding_idx == 0
    assert net.embedding.weight[0].abs().sum() == 0
    assert net.forward_cells[0].input_size == 6


@pytest.mark.parametrize("bidirectional", [False, True])
def test_forecast_head_writes_every_step_of_every_target_and_ignores_padding(
    bidirectional: bool,
) -> None:
    torch.manual_seed(0)
    net = SequenceNet(4, 2, hidden_size=8, bidirectional=bidirectional, horizon=6).eval()
    seqs = [torch.randn(n, 4) for n in (9, 4)]
    x, lengths = _padded(seqs, 27, fill=-11.0)
    with torch.no_grad():
        out = net(x, lengths)
        assert out.shape == (2, 6, 2)
        for i, s in enumerate(seqs):
            alone = net(s.unsqueeze(0), torch.tensor([len(s)]))
            torch.testing.assert_close(out[i], alone[0], atol=1e-6, rtol=0)


def test_auto_encoder_is_conv_only_for_long_training_sequences() -> None:
    model = ModelConfig(conv_from_length=100)
    assert architecture(model, 29)["encoder"] == "linear"
    assert architecture(model, 100)["encoder"] == "conv"
    assert architecture(model.model_copy(update={"encoder": "linear"}), 500)["encoder"] == "linear"
    with pytest.raises(ValueError, match=r"model\.encoder_stride"):
        ModelConfig(encoder_kernel=2, encoder_stride=3)
