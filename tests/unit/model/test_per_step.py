"""Per-step output: padding invariance, step alignment, character features, masked losses, the
CRF against brute-force enumeration, and per-step batches."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from seqops.data.batches import IGNORE_INDEX, Augment, collate_per_step, loader
from seqops.data.sequences import SequenceSet
from seqops.model.crf import LinearChainCRF
from seqops.model.network import CharacterCNN, SequenceNet, WordShape
from seqops.model.objectives import CRFTagging, EntityF1, Tagging, build_objective
from tests.unit.model.test_network import _padded

CELLS = ("lstm", "gru", "rnn")


def tagger(cell: str = "lstm", bidirectional: bool = True, **kwargs: object) -> SequenceNet:
    torch.manual_seed(0)
    args: dict = {"hidden_size": 8, "num_layers": 2, "per_step": True, **kwargs}
    return SequenceNet(5, 3, cell=cell, bidirectional=bidirectional, **args).eval()


def random_crf(n_tags: int, seed: int) -> LinearChainCRF:
    torch.manual_seed(seed)
    crf = LinearChainCRF(n_tags).double()
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    return crf


@pytest.mark.parametrize(("cell", "bidirectional"), list(itertools.product(CELLS, (False, True))))
@pytest.mark.parametrize("encoder", ["linear", "conv"])
def test_padding_never_changes_a_sequences_per_step_outputs(
    cell: str, bidirectional: bool, encoder: str
) -> None:
    net = tagger(cell, bidirectional, encoder=encoder, encoder_kernel=3, encoder_stride=1)
    seqs = [torch.randn(n, 5) for n in (7, 3, 5)]
    x, lengths = _padded(seqs, 21, fill=37.0)  # three times the longest, garbage padding
    with torch.no_grad():
        batched = net(x, lengths)
        assert batched.shape == (3, 21, 3)
        for i, s in enumerate(seqs):
            alone = net(s.unsqueeze(0), torch.tensor([len(s)]))[0]  # (T_i, 3)
            torch.testing.assert_close(batched[i, : len(s)], alone, atol=1e-6, rtol=0)
            assert batched[i, len(s) :].abs().max() == 0  # padded steps are 0


@pytest.mark.parametrize(("cell", "bidirectional"), list(itertools.product(CELLS, (False, True))))
def test_padding_never_changes_a_token_sequences_per_step_outputs(
    cell: str, bidirectional: bool
) -> None:
    torch.manual_seed(0)
    net = SequenceNet(
        0, 4, cell=cell, bidirectional=bidirectional, hidden_size=8, vocab_size=30,
        embedding_dim=6, per_step=True,
    ).eval()  # fmt: skip
    seqs = [torch.randint(1, 30, (n,)) for n in (6, 2, 4)]
    tokens = torch.full((3, 18), 17, dtype=torch.int64)  # real ids in the padding
    for i, s in enumerate(seqs):
        tokens[i, : len(s)] = s
    with torch.no_grad():
        batched = net(tokens, torch.tensor([len(s) for s in seqs]))
        for i, s in enumerate(seqs):
            alone = net(s.unsqueeze(0), torch.tensor([len(s)]))[0]
            torch.testing.assert_close(batched[i, : len(s)], alone, atol=1e-6, rtol=0)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bidirectional_outputs_are_in_step_order(cell: str) -> None:
    """Step t's output reads the forward state after step t and the backward state after
    reading steps T-1 .. t: the backward states are flipped back to the original order."""
    net = tagger(cell, True, num_layers=1)
    seq = torch.randn(6, 5)
    x, lengths = _padded([seq], 10, fill=-5.0)
    with torch.no_grad():
        got = net(x, lengths)[0, :6]
        h = torch.relu(net.encoder(seq)).unsqueeze(0)  # (1, 6, 8)
        fwd, _ = net.forward_cells[0](h)
        bwd, _ = net.backward_cells[0](h.flip(1))
        expected = net.head(torch.cat([fwd, bwd.flip(1)], dim=-1))[0]
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


def test_per_step_adds_no_pooling_layers_and_flags_off_add_nothing() -> None:
    attentive = tagger(pooling="attention")
    assert attentive.attention is None and attentive.crf is None
    torch.manual_seed(0)
    plain = SequenceNet(5, 3, hidden_size=8, num_layers=2, bidirectional=True)
    assert plain.characters is None and plain.crf is None
    # A per-step network holds the same weights as a pooled one (mean pooling has none).
    assert plain.state_dict().keys() == tagger().state_dict().keys()
    with_crf = tagger(crf=True)
    assert {k for k in with_crf.state_dict() if k.startswith("crf.")} == {
        "crf.transitions",
        "crf.start_transitions",
        "crf.end_transitions",
    }


def test_rejects_what_per_step_output_cannot_do() -> None:
    with pytest.raises(ValueError, match="encoder_stride must be 1"):
        SequenceNet(5, 3, per_step=True, encoder="conv", encoder_kernel=4, encoder_stride=2)
    with pytest.raises(ValueError, match="horizon"):
        SequenceNet(5, 3, per_step=True, horizon=4)
    with pytest.raises(ValueError, match="crf needs per_step"):
        SequenceNet(5, 3, crf=True)
    with pytest.raises(ValueError, match="needs token input"):
        SequenceNet(5, 3, per_step=True, char_vocab_size=20)
    with pytest.raises(ValueError, match="odd"):
        CharacterCNN(20, 4, 6, kernel=2)


def test_character_features_ignore_padding_and_reach_the_output() -> None:
    torch.manual_seed(0)
    chars_net = CharacterCNN(20, 4, 6, kernel=3).eval()
    word = torch.tensor([[[3, 7, 1]]])  # (1, 1, 3): one word of three characters
    padded = torch.tensor([[[3, 7, 1, 0, 0, 0, 0], [0] * 7]])  # wider, plus a padded word
    with torch.no_grad():
        alone, batched = chars_net(word), chars_net(padded)
    torch.testing.assert_close(batched[0, 0], alone[0, 0], atol=1e-6, rtol=0)
    assert batched[0, 1].abs().max() == 0

    torch.manual_seed(0)
    net = SequenceNet(
        0, 4, hidden_size=8, vocab_size=30, embedding_dim=6, per_step=True, bidirectional=True,
        char_vocab_size=20, char_dim=4, char_filters=5,
    ).eval()  # fmt: skip
    assert net.forward_cells[0].input_size == 6 + 5
    tokens, lengths = torch.tensor([[4, 9, 2, 0, 0], [5, 6, 0, 0, 0]]), torch.tensor([3, 2])
    chars = torch.randint(1, 20, (2, 5, 4))
    chars[:, :, 3] = 0  # every word padded by one character
    with torch.no_grad():
        batched = net(tokens, lengths, chars)
        alone = net(tokens[1:, :2], lengths[1:], chars[1:, :2, :3])  # no padding at all
        torch.testing.assert_close(batched[1, :2], alone[0], atol=1e-6, rtol=0)
        other = chars.clone()
        other[0, 1, 0] = (other[0, 1, 0] % 19) + 1  # another first letter of word 1
        assert not torch.allclose(net(tokens, lengths, other)[0], batched[0])
        with pytest.raises(ValueError, match="pass chars"):
            net(tokens, lengths)


def _tagged_batch(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits `(3, 6, 4)`, lengths `(3,)` and labels padded with IGNORE_INDEX."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([6, 2, 4])
    logits = torch.randn(3, 6, 4, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 4, (3, 6), generator=generator)
    y[torch.arange(6).unsqueeze(0) >= lengths.unsqueeze(1)] = IGNORE_INDEX
    return logits, lengths, y


def _crf_objective(seed: int = 0) -> CRFTagging:
    return CRFTagging(random_crf(4, seed))


@pytest.mark.parametrize("make", [lambda: Tagging(4), _crf_objective], ids=["tagging", "crf"])
def test_padded_steps_change_neither_loss_nor_gradients(make: object) -> None:
    objective = make()  # type: ignore[operator]
    logits, lengths, y = _tagged_batch(0)
    padded = torch.arange(6).unsqueeze(0) >= lengths.unsqueeze(1)  # (3, 6)
    noisy = logits.clone()
    noisy[padded] = 1e3 * torch.randn(int(padded.sum()), 4, dtype=torch.float64)
    results = []
    for out in (logits, noisy):
        out = out.clone().requires_grad_()
        loss = objective.loss(out, y)
        (grad,) = torch.autograd.grad(loss, out)
        results.append((loss.detach(), grad))
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-12, rtol=0)
    torch.testing.assert_close(results[0][1], results[1][1], atol=1e-12, rtol=0)
    assert results[0][1][padded].abs().max() == 0


def test_tagging_loss_is_the_mean_cross_entropy_of_real_steps() -> None:
    logits, _, y = _tagged_batch(1)
    real = y != IGNORE_INDEX
    expected = torch.nn.functional.cross_entropy(logits[real], y[real])
    torch.testing.assert_close(Tagging(4).loss(logits, y), expected)


@pytest.mark.parametrize("make", [lambda: Tagging(4), _crf_objective], ids=["tagging", "crf"])
def test_token_accuracy_counts_real_steps_only(make: object) -> None:
    objective = make()  # type: ignore[operator]
    logits, lengths, y = _tagged_batch(2)
    if isinstance(objective, CRFTagging):
        predicted = objective.crf.decode(logits, lengths)
    else:
        predicted = logits.argmax(-1)
    real = y != IGNORE_INDEX
    objective.update(logits, y)
    metrics = objective.metrics.compute()
    assert set(metrics) == {"val/token_accuracy"}
    expected = (predicted[real] == y[real]).double().mean()
    assert float(metrics["val/token_accuracy"]) == pytest.approx(float(expected))


def test_crf_objective_needs_the_networks_crf_and_contiguous_labels() -> None:
    net = tagger(crf=True)
    objective = build_objective({"kind": "crf_tagging"}, net)
    assert isinstance(objective, CRFTagging) and objective.crf is net.crf
    with pytest.raises(ValueError, match="crf=True"):
        build_objective({"kind": "crf_tagging"}, tagger())
    assert isinstance(build_objective({"kind": "tagging", "n_tags": 3}), Tagging)
    gap = torch.tensor([[1, IGNORE_INDEX, 2]])
    with pytest.raises(ValueError, match="real tags then"):
        objective.loss(torch.zeros(1, 3, 3), gap)


def _all_paths(length: int, n_tags: int) -> list[tuple[int, ...]]:
    return list(itertools.product(range(n_tags), repeat=length))


@pytest.mark.parametrize("seed", range(6))
def test_crf_likelihood_and_viterbi_match_brute_force(seed: int) -> None:
    n_tags, time = 3, 4
    crf = random_crf(n_tags, seed)
    lengths = torch.tensor([4, 1, 3])
    emissions = torch.randn(3, time, n_tags, dtype=torch.float64)
    log_z = crf.log_partition(emissions, lengths)
    best = crf.decode(emissions, lengths)
    for i, length in enumerate(lengths.tolist()):
        paths = _all_paths(length, n_tags)
        tags = torch.full((len(paths), time), IGNORE_INDEX)  # padded tags are never read
        tags[:, :length] = torch.tensor(paths)
        batch = emissions[i].expand(len(paths), -1, -1)
        scores = crf.path_score(batch, tags, lengths[i].expand(len(paths)))
        by_hand = [
            crf.start_transitions[p[0]]
            + sum(emissions[i, t, p[t]] for t in range(length))
            + sum(crf.transitions[p[t - 1], p[t]] for t in range(1, length))
            + crf.end_transitions[p[-1]]
            for p in paths
        ]
        torch.testing.assert_close(scores, torch.stack(by_hand))
        torch.testing.assert_close(log_z[i], torch.logsumexp(scores, dim=0))
        nll = crf.negative_log_likelihood(batch, tags, lengths[i].expand(len(paths)))
        torch.testing.assert_close(torch.exp(-nll).sum(), torch.tensor(1.0, dtype=torch.float64))
        assert best[i, :length].tolist() == list(paths[int(scores.argmax())])
        assert (best[i, length:] == -1).all()


def _overfits(objective_spec: dict, crf: bool) -> tuple[float, float]:
    net = tagger("gru", False, num_layers=1, dropout=0.0, crf=crf).train()
    objective = build_objective(objective_spec, net)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(6, 8, 5, generator=generator)
    lengths = torch.tensor([8, 7, 6, 5, 4, 3])
    y = (x[..., 0] > 0).long() + (x[..., 1] > 0).long()  # a tag from each step's own input
    y[torch.arange(8).unsqueeze(0) >= lengths.unsqueeze(1)] = IGNORE_INDEX
    optimiser = torch.optim.Adam(net.parameters(), lr=0.05)
    with torch.no_grad():
        first = float(objective.loss(net(x, lengths), y))
    for _ in range(60):
        optimiser.zero_grad()
        loss = objective.loss(net(x, lengths), y)
        loss.backward()
        optimiser.step()
    net.eval()
    with torch.no_grad():
        objective.update(net(x, lengths), y)
    return float(loss) / first, float(objective.metrics.compute()["val/token_accuracy"])


@pytest.mark.parametrize("crf", [False, True])
def test_a_tagger_learns_one_tiny_batch(crf: bool) -> None:
    spec = {"kind": "crf_tagging"} if crf else {"kind": "tagging", "n_tags": 3}
    ratio, accuracy = _overfits(spec, crf)
    assert ratio < 0.1
    assert accuracy == 1.0


def test_per_step_batches_pad_labels_with_the_ignore_index() -> None:
    items = [
        (np.ones((3, 2), np.float32), np.array([0, 2, 1])),
        (np.ones((5, 2), np.float32), np.array([1, 1, 0, 2, 2])),
    ]
    x, lengths, y = collate_per_step(items)
    assert x.shape == (2, 5, 2) and lengths.tolist() == [3, 5]
    assert y.dtype == torch.int64
    assert y.tolist() == [[0, 2, 1, IGNORE_INDEX, IGNORE_INDEX], [1, 1, 0, 2, 2]]
    with pytest.raises(ValueError, match="2 tags for 3 steps"):
        collate_per_step([(np.ones((3, 2), np.float32), np.array([0, 1]))])


def test_per_step_loader_keeps_tags_aligned_and_refuses_cropping() -> None:
    tokens = [np.array([4, 5, 6]), np.array([7, 8])]
    tags = np.empty(2, dtype=object)
    tags[:] = [np.array([0, 1, 2]), np.array([2, 0])]
    data = SequenceSet(tokens, tags)
    ((x, lengths, y),) = list(loader(data, batch_size=2, shuffle=False, per_step=True))
    assert lengths.tolist() == [3, 2]
    assert x.tolist() == [[4, 5, 6], [7, 8, 0]]
    assert y.tolist() == [[0, 1, 2], [2, 0, IGNORE_INDEX]]
    with pytest.raises(ValueError, match="crop"):
        loader(data, 2, shuffle=True, per_step=True, augment=Augment(crop=0.2))


def test_word_dropout_reads_words_as_unk_in_training_only() -> None:
    """Training replaces real word ids (never padding, never `[UNK]` itself) by 1 at about the
    configured rate; evaluation reads every word, so the exported graph has no dropout."""
    torch.manual_seed(0)
    net = SequenceNet(0, 3, vocab_size=50, embedding_dim=4, per_step=True, word_dropout=0.3)
    ids = torch.randint(2, 50, (64, 20))
    ids[:, 15:] = 0  # padding
    net.train()
    dropped = net.drop_words(ids)
    real = ids > 0
    assert torch.equal(dropped[~real], ids[~real])  # padding stays 0
    changed = dropped != ids
    assert torch.all(dropped[changed] == 1)
    assert 0.25 < changed[real].float().mean().item() < 0.35
    net.eval()
    lengths = torch.full((64,), 15)
    assert torch.equal(net(ids, lengths), net(ids, lengths))  # no dropout in eval


def test_word_dropout_needs_token_input() -> None:
    with pytest.raises(ValueError, match="word_dropout needs token input"):
        SequenceNet(3, 2, per_step=True, word_dropout=0.1)


SHAPE_CHARS = ["[PAD]", "[UNK]", "a", "b", "A", "B", "1", "2", "@", "#", "!"]


def _char_ids(*words: str) -> torch.Tensor:
    """`(1, len(words), 6)` ids of `words` in `SHAPE_CHARS`, padded with 0."""
    ids = [[SHAPE_CHARS.index(c) for c in w] + [0] * (6 - len(w)) for w in words]
    return torch.tensor([ids])


def test_word_shape_features_read_casing_digits_and_marks_and_zero_padding() -> None:
    shape = WordShape(SHAPE_CHARS)
    got = shape(_char_ids("Ab", "AB", "aB", "ab12", "12", "@ab", "#ab", "!!", ""))[0]
    names = WordShape.FEATURES
    assert [tuple(n for n, v in zip(names, row.tolist(), strict=True) if v) for row in got] == [
        ("capitalised",),
        ("capitalised", "all_caps"),
        ("inner_caps",),
        ("has_digit",),
        ("has_digit", "all_digits"),
        ("mention",),
        ("hashtag",),
        ("no_letter_or_digit",),
        (),  # a padded word
    ]


def test_word_shape_changes_the_input_of_a_lowercased_word_and_keeps_padding_invariance() -> None:
    """With `shape_chars`, a word's casing reaches the tagger through the shape features even
    without the character CNN; padded words and steps change nothing."""
    torch.manual_seed(0)
    net = SequenceNet(
        0, 3, hidden_size=8, vocab_size=30, embedding_dim=6, per_step=True,
        shape_chars=SHAPE_CHARS,
    ).eval()  # fmt: skip
    assert net.forward_cells[0].input_size == 6 + len(WordShape.FEATURES)
    tokens, lengths = torch.tensor([[4, 9, 0]]), torch.tensor([2])
    lower, upper = _char_ids("ab", "ab", ""), _char_ids("Ab", "ab", "")
    with torch.no_grad():
        a = net(torch.cat([tokens.unsqueeze(-1), lower], dim=-1), lengths)  # packed input
        b = net(torch.cat([tokens.unsqueeze(-1), upper], dim=-1), lengths)
        assert not torch.allclose(a[0, :2], b[0, :2])
        alone = net(tokens[:, :2], lengths, lower[:, :2, :2])
        torch.testing.assert_close(a[0, :2], alone[0], atol=1e-6, rtol=0)
    plain = SequenceNet(0, 3, hidden_size=8, vocab_size=30, embedding_dim=6, per_step=True)
    assert plain.shape is None and plain.forward_cells[0].input_size == 6
    with pytest.raises(ValueError, match="shape_chars needs token input"):
        SequenceNet(3, 2, per_step=True, shape_chars=SHAPE_CHARS)


def test_entity_f1_scores_exact_entities_over_real_steps_only() -> None:
    names = ["O", "B-x", "I-x", "B-y"]
    metric = EntityF1(names)
    gold = torch.tensor([[1, 2, 0, IGNORE_INDEX], [0, 3, 0, 1]])
    # Sentence 0: one exact entity (the padded step's guess is never read); sentence 1: the
    # y entity is right, the x one has the wrong type, and a stray I-x opens an extra one.
    predicted = torch.tensor([[1, 2, 0, 1], [2, 3, 0, 3]])
    metric.update(predicted[:1], gold[:1])  # across batches, as over an epoch
    metric.update(predicted[1:], gold[1:])
    # 2 entities right of 4 predicted and 3 gold.
    assert metric.compute().item() == pytest.approx(2 * 2 / (4 + 3))
    assert EntityF1(names).compute().item() == 0.0  # nothing seen: 0, as conlleval


@pytest.mark.parametrize("crf", [False, True])
def test_tagging_objectives_log_entity_f1_only_with_tag_names(crf: bool) -> None:
    names = ["O", "B-x", "I-x", "B-y"]
    net = SequenceNet(0, 4, hidden_size=4, vocab_size=10, embedding_dim=3, per_step=True, crf=crf)
    base = {"kind": "crf_tagging"} if crf else {"kind": "tagging", "n_tags": 4}
    plain = build_objective(base, net)
    with_f1 = build_objective({**base, "tag_names": names}, net)
    assert set(plain.metrics.keys()) == {"val/token_accuracy"}
    assert set(with_f1.metrics.keys()) == {"val/token_accuracy", "val/entity_f1"}
    logits, _, y = _tagged_batch(0)
    with_f1.update(logits.float(), y)
    computed = with_f1.metrics.compute()
    assert 0.0 <= computed["val/entity_f1"].item() <= 1.0
    with pytest.raises(ValueError, match="3 tag_names for 4 tags"):
        build_objective({**base, "tag_names": names[:3]}, net)
