"""Real particle images (shared data): the default blind spot leaves no mesh of copied noise."""

from __future__ import annotations

import numpy as np
import pytest

from cryoden.inference.denoise import Denoiser
from cryoden.io import read_mrc
from cryoden.metrics.high_frequency import high_frequency_power
from cryoden.models import load_model
from cryoden.nets.config import NetworkConfig
from cryoden.training import TrainConfig, train
from cryoden.training.data import SingleDataset
from cryoden.training.noise2void import Noise2Void

pytestmark = pytest.mark.usefixtures("one_thread")


def _near_nyquist_power(scheme, train_images, image, tmp_path) -> float:
    """Train ``scheme`` briefly (a tiny U-Net, 100 steps) and return the denoised ``image``'s
    power on the Nyquist row and column relative to the raw image's: copied correlated noise
    shows there as a mesh."""
    config = TrainConfig(
        max_steps=100, patch=32, batch_size=8, learning_rate=3e-3, steps_per_epoch=50,
        threads=1, seed=0,
    )  # fmt: skip
    network = NetworkConfig(base_channels=8, depth=2)
    result = train(scheme, network, SingleDataset(train_images), None, config, out=tmp_path)
    denoised = Denoiser(load_model(result.model_path), precision="fp32", backend="torch")(image)
    assert np.isfinite(denoised).all()
    return high_frequency_power(denoised)[1] / high_frequency_power(image)[1]


def test_default_n2v_on_real_particles_has_no_mesh(shared_data, tmp_path):
    path = shared_data / "particles" / "aspire_sample.mrcs"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    stack = [np.asarray(image, dtype=np.float32) for image in read_mrc(path).data]
    held_out, train_images = stack[0], stack[1:]
    default = Noise2Void.for_images(train_images)
    assert default.blind_spot.kind == "structured"  # real detector noise is correlated
    plain = Noise2Void.for_images(train_images, blind_spot="pixel")
    with_default = _near_nyquist_power(default, train_images, held_out, tmp_path / "default")
    with_plain = _near_nyquist_power(plain, train_images, held_out, tmp_path / "plain")
    assert with_default < 0.01
    assert with_plain > 10 * with_default  # the measure does see plain Noise2Void's mesh
