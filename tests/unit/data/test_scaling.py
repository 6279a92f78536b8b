import numpy as np

from seqops.config import DataConfig
from seqops.data.scaling import ChannelScaler
from seqops.data.sequences import SequenceSet
from seqops.tasks.parts.prepare import get_prepare


def test_scaler_standardises_each_channel_and_survives_constant_channels() -> None:
    rng = np.random.default_rng(0)
    seqs = [np.c_[rng.normal(5, 3, (n, 1)), np.ones((n, 1))] for n in (4, 9, 6)]
    scaler = ChannelScaler.fit(seqs)
    steps = np.concatenate(scaler.transform(seqs))
    np.testing.assert_allclose(steps[:, 0].mean(), 0, atol=1e-6)
    np.testing.assert_allclose(steps[:, 0].std(), 1, atol=1e-5)
    assert np.isfinite(steps).all()
    again = ChannelScaler.from_dict(scaler.to_dict())
    np.testing.assert_array_equal(again.transform(seqs)[1], scaler.transform(seqs)[1])


def test_scaler_is_fitted_on_the_training_split_only() -> None:
    data = DataConfig()
    prepared = get_prepare(data.task).prepare(data, seed=42)
    train = prepared.splits["train"]
    # The stored train split is standardised with its own statistics: mean 0, std 1 per channel.
    steps = np.concatenate(train.sequences)
    np.testing.assert_allclose(steps.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(steps.std(axis=0), 1, atol=1e-4)
    # ...and the test split is not (it was scaled with the training statistics).
    assert np.abs(np.concatenate(prepared.splits["test"].sequences).mean(axis=0)).max() > 1e-3


def test_ragged_round_trip(tmp_path) -> None:
    data = SequenceSet([np.ones((3, 2)), np.zeros((5, 2))], np.array([1, 0]))
    data.save(tmp_path / "s.npz")
    back = SequenceSet.load(tmp_path / "s.npz")
    assert back.lengths.tolist() == [3, 5] and back.labels.tolist() == [1, 0]
    np.testing.assert_array_equal(back.sequences[1], np.zeros((5, 2)))
