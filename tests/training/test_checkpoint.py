"""Checkpoints: the run state round trip, one weights file kept, identity and format checks."""

from __future__ import annotations

import json
import math

import pytest

from cryoden.errors import InputFileError, ParameterError
from cryoden.nets import NetworkConfig
from cryoden.training import TrainConfig, train
from cryoden.training.checkpoint import CHECKPOINT_JSON, EpochRecord, RunState
from cryoden.training.data import PairDataset

from .helpers import blob_images, noisy_pairs

NET = NetworkConfig(depth=2, base_channels=4)
CONFIG = TrainConfig(
    epochs=2, patch=24, batch_size=2, steps_per_epoch=2, validation_patches=4, threads=1, seed=3
)


@pytest.fixture(scope="module")
def pairs() -> PairDataset:
    return PairDataset(noisy_pairs(blob_images(4, 32), snr=0.5))


def test_run_state_round_trips_through_json():
    state = RunState(epoch=2, global_step=8, history=[EpochRecord(1, 0.5, None, 1e-3, 4, 0.1)])
    again = RunState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state and math.isinf(again.best_loss)


def test_checkpoint_keeps_only_the_latest_weights(pairs, tmp_path):
    train("n2n", NET, pairs, None, CONFIG, out=tmp_path / "m", device="cpu")
    directory = tmp_path / "m" / "checkpoint"
    assert sorted(p.name for p in directory.iterdir()) == [
        "checkpoint-0002.safetensors",
        CHECKPOINT_JSON,
    ]
    record = json.loads((directory / CHECKPOINT_JSON).read_text())
    assert record["weights_file"] == "checkpoint-0002.safetensors"
    assert record["identity"]["scheme"] == "n2n" and record["state"]["epoch"] == 2


def test_resume_refuses_another_network_and_foreign_files(pairs, tmp_path):
    out = tmp_path / "m"
    train("n2n", NET, pairs, None, CONFIG, out=out, device="cpu")
    wider = NET.replace(base_channels=8)
    with pytest.raises(ParameterError, match="cannot resume.*network"):
        train("n2n", wider, pairs, None, CONFIG, out=out, device="cpu", resume=True)
    (out / "checkpoint" / CHECKPOINT_JSON).write_text('{"format": "something else"}')
    with pytest.raises(InputFileError, match="not a cryoden checkpoint"):
        train("n2n", NET, pairs, None, CONFIG, out=out, device="cpu", resume=True)
