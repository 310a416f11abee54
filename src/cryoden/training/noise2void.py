"""Noise2Void and N2V2: blind-spot training from single noisy images.

Noise2Void (Krull, Buchholz & Jug, "Noise2Void - Learning Denoising from Single Noisy Images",
CVPR 2019) trains a denoiser on the noisy images alone. In every training patch a small, stratified
random set of pixels is *masked*: each masked pixel's value is replaced by the value of another
pixel from its neighbourhood, the network predicts the whole patch, and the loss is taken on the
masked pixels only, against their original noisy values. Since a masked pixel's own value is not in
the network's input, the network cannot learn the identity; with pixel-wise independent, zero-mean
noise the best prediction is the clean signal.

N2V2 (Höck, Buchholz, Brachmann, Jug & Krull, "N2V2 - Fixing Noise2Void Checkerboard Artifacts
with Modified Sampling Strategies and a Tweaked Network Architecture", ECCV Workshops 2022) removes
the checkerboard artefacts of plain Noise2Void with a blur-pool U-Net without its top-level skip
connection (:func:`n2v2_network_config`) and the median of the neighbourhood, centre excluded, as
the replacement value: the scheme :class:`N2V2`, registered as ``"n2v2"``.

Masking here is *strict*: replacement values never come from another masked pixel, so no masked
pixel's own value re-enters the input anywhere, and the prediction at a masked pixel does not
depend on that pixel's noisy value at all (the reference implementations copy from the original
patch and can leak a value when two masked pixels are neighbours).

The blind spot can be more than one pixel (:mod:`cryoden.training.blind_spot`): where the noise
of adjacent pixels is correlated, a structured blind spot masks a box around each masked pixel,
or pixel-shuffle down-sampling trains on sub-images whose adjacent pixels are further apart;
:meth:`Noise2Void.for_images` measures the training images' noise and chooses. Except for
pixel-shuffle models (applied to the 2 x 2 polyphase sub-images, as the model file records),
nothing in these schemes is needed at inference: a model is applied as
``network(normalised image)`` like a Noise2Noise model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from cryoden.errors import ParameterError
from cryoden.nets.config import NetworkConfig
from cryoden.nets.polyphase import merge_polyphase, split_polyphase
from cryoden.training.blind_spot import BlindSpot, parse_blind_spot, resolve_blind_spot
from cryoden.training.blind_spot_3d import (
    REPLACEMENTS,
    blind_spot_mask_3d,
    measure_volume_snr,
    resolve_volume_blind_spot,
)
from cryoden.training.losses import check_loss, regression_loss
from cryoden.training.masking import (
    MaskedBatch,
    Replacement,
    blind_spot_mask,
    check_neighborhood,
    mask_cell_size,
)
from cryoden.training.pixel_shuffle import pd_crop, pd_split

logger = logging.getLogger(__name__)

#: Default fraction of masked pixels: one per 5 x 5 cell (see :class:`Noise2Void`).
DEFAULT_MASK_FRACTION = 0.04

#: The voxel SNR of the training volumes (:func:`~cryoden.training.blind_spot_3d.measure_volume_snr`)
#: from which volumes train plain Noise2Void rather than N2V2 (:func:`volume_variant`). The top
#: skip connection passes fine detail, which a high-SNR tomogram has to give, but also lets the
#: network combine the weak back-projected noise correlations that reach beyond the blind spot,
#: which dominate the error of a low-SNR one.
VOLUME_N2V_MIN_SNR = 0.2

#: The network options N2V2 sets (blur-pool downsampling, no top-level skip connection).
N2V2_NETWORK_TWEAKS: dict[str, Any] = {"blurpool": True, "top_skip": False}


def n2v2_network_config(config: NetworkConfig | None = None) -> NetworkConfig:
    """The N2V2 version of a U-Net configuration: blur-pool and no top-level skip.

    Parameters
    ----------
    config
        A ``unet`` configuration; ``None`` for the default U-Net.

    Returns
    -------
    NetworkConfig
        A copy with :data:`N2V2_NETWORK_TWEAKS` applied (``blurpool=True``, ``top_skip=False``).

    Raises
    ------
    ParameterError
        If the architecture has no skip connections to drop (the seed encoder-decoders).
    """
    config = NetworkConfig() if config is None else config
    return config.replace(**N2V2_NETWORK_TWEAKS)


class Noise2Void:
    """The Noise2Void training scheme (``"n2v"``); patches have 1 channel (single images).

    Credit: Krull, Buchholz & Jug, "Noise2Void - Learning Denoising from Single Noisy Images",
    CVPR 2019. :class:`N2V2` (``"n2v2"``) is the same scheme with N2V2's replacement and
    network; see the module docstring.

    Parameters
    ----------
    loss
        ``"l2"`` (the paper's) or ``"l1"``, on the masked pixels only.
    mask_fraction
        Fraction of pixels masked per patch, one per stratification cell of side
        ``round(1 / sqrt(mask_fraction))`` (see :func:`mask_cell_size`). The default, 1/25 (cells
        of 5 x 5), is higher than the papers' 0.2 %: more masked pixels per patch give a less
        noisy gradient, which matters when training is short.
    neighborhood
        Odd side of the replacement window (5: a 5 x 5 neighbourhood).
    replacement
        ``"random"`` or ``"median"``; ``None`` takes the scheme's own
        (:attr:`default_replacement`: ``"random"`` for N2V, ``"median"`` for N2V2).
    validation_seed
        Seed of the fixed generator :meth:`validation_loss` masks with.
    blind_spot
        What the network is kept from seeing around each masked pixel
        (:class:`~cryoden.training.blind_spot.BlindSpot` or its text: ``"pixel"``, the plain
        one-pixel blind spot; ``"structured:X,Y"``; ``"structured:X,Y,Z"`` for volumes;
        ``"pd:2"`` for images). ``"auto"`` needs the training data: build the scheme with
        :meth:`for_images` or :meth:`for_volumes`.
    noise_correlation
        The measured noise correlation the blind spot was chosen from (``{"x": [...], "y":
        [...]}``, volumes add ``"z"``; lags 1, 2, ...), recorded in the model file; ``None``
        when not measured.
    """

    name = "n2v"
    channels = 1
    #: The replacement used when none is given.
    default_replacement: Replacement = "random"

    def __init__(
        self,
        *,
        loss: str = "l2",
        mask_fraction: float = DEFAULT_MASK_FRACTION,
        neighborhood: int = 5,
        replacement: Replacement | None = None,
        validation_seed: int = 0,
        blind_spot: BlindSpot | str = "pixel",
        noise_correlation: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        self.loss_kind = check_loss(loss)
        parsed = parse_blind_spot(blind_spot)
        if parsed is None:
            raise ParameterError(
                "blind_spot 'auto' is chosen from the training images: build the scheme with "
                "Noise2Void.for_images(images)"
            )
        self.blind_spot = parsed
        self.noise_correlation = (
            None
            if noise_correlation is None
            else {
                axis: [float(v) for v in noise_correlation[axis]]
                for axis in ("x", "y", "z")
                if axis in noise_correlation
            }
        )
        if replacement is None:
            replacement = self.default_replacement
        if replacement not in REPLACEMENTS:
            raise ParameterError(
                f"replacement must be one of {', '.join(REPLACEMENTS)}, got {replacement!r}"
            )
        mask_cell_size(mask_fraction)
        check_neighborhood(neighborhood)
        self.mask_fraction = float(mask_fraction)
        self.neighborhood = neighborhood
        self.replacement: Replacement = replacement
        self.validation_seed = int(validation_seed)
        self._network_checked = False

    @classmethod
    def for_images(
        cls,
        images: Sequence[Any] | np.ndarray,
        *,
        blind_spot: BlindSpot | str = "auto",
        **options: Any,
    ) -> Noise2Void:
        """The scheme for these training images: their noise correlation is measured and, for
        ``blind_spot="auto"``, the blind spot chosen from it
        (:func:`~cryoden.training.blind_spot.resolve_blind_spot`); both are recorded.

        ``images``: 2D arrays, or a dataset's ``(C, H, W)`` arrays (``dataset.images``);
        ``options``: the other parameters of the class.
        """
        chosen, correlation = resolve_blind_spot(blind_spot, images)
        return cls(blind_spot=chosen, noise_correlation=correlation, **options)

    @classmethod
    def for_volumes(
        cls,
        volumes: Sequence[Any],
        *,
        blind_spot: BlindSpot | str = "auto",
        **options: Any,
    ) -> Noise2Void:
        """The scheme for these training volumes ``(Z, Y, X)`` (arrays or memory maps): their
        noise correlation along x, y and z is measured and, for ``blind_spot="auto"``, the 3D
        blind spot chosen from it
        (:func:`~cryoden.training.blind_spot_3d.resolve_volume_blind_spot`); both are
        recorded."""
        chosen, correlation = resolve_volume_blind_spot(blind_spot, volumes)
        return cls(blind_spot=chosen, noise_correlation=correlation, **options)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(loss={self.loss_kind!r}, "
            f"mask_fraction={self.mask_fraction!r}, neighborhood={self.neighborhood!r}, "
            f"replacement={self.replacement!r}, blind_spot={self.blind_spot.spec!r})"
        )

    def scheme_options(self) -> dict[str, Any]:
        """What the model file records: the blind spot (which the denoiser applies: ``pd:2``
        models are applied to the 2 x 2 polyphase sub-images) and the noise correlation it was
        chosen from, when measured."""
        options: dict[str, Any] = {"blind_spot": self.blind_spot.spec}
        if self.noise_correlation is not None:
            options["noise_correlation"] = self.noise_correlation
        return options

    @property
    def network_tweaks(self) -> dict[str, Any]:
        """Network options the scheme calls for (apply with
        ``network_config.replace(**scheme.network_tweaks)``): none for N2V."""
        return {}

    def mask(self, batch: torch.Tensor, *, generator: torch.Generator) -> MaskedBatch:
        """Mask ``batch`` with this scheme's settings (see :func:`blind_spot_mask`; a ``pd``
        blind spot masks the sub-images of :meth:`training_view` pixel by pixel). Volumes
        ``(B, C, Z, Y, X)`` get the 3D blind spot, one voxel or a structured box
        (:func:`~cryoden.training.blind_spot_3d.blind_spot_mask_3d`)."""
        if batch.ndim == 5:
            if self.blind_spot.kind == "pd":
                raise ParameterError(
                    f"blind_spot {self.blind_spot.spec} is for images; volumes train with "
                    "pixel or structured:X,Y,Z"
                )
            inputs, mask = blind_spot_mask_3d(
                batch, mask_fraction=self.mask_fraction, neighborhood=self.neighborhood,
                replacement=self.replacement, generator=generator,
                blind_radius=self.blind_spot.radius_3d,
            )  # fmt: skip
            return MaskedBatch(inputs=inputs, mask=mask)
        return blind_spot_mask(
            batch,
            mask_fraction=self.mask_fraction,
            neighborhood=self.neighborhood,
            replacement=self.replacement,
            generator=generator,
            blind_radius=self.blind_spot.radius,
        )

    def training_view(self, batch: torch.Tensor) -> torch.Tensor:
        """The patches the network trains on: ``batch`` itself, or for a ``pd:S`` blind spot
        its ``S x S`` pixel-shuffled sub-images (sides cropped to multiples of ``S``; images
        ``(B, C, H, W)`` only)."""
        if self.blind_spot.kind != "pd" or batch.ndim != 4:
            return batch
        stride = self.blind_spot.stride
        return pd_split(pd_crop(batch, stride), stride)

    def apply_model(self, network: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """The model's output for noisy ``images`` ``(B, 1, H, W)`` as the denoiser computes
        it: the network on the images, or for ``pd:2`` on their four polyphase sub-images,
        merged (:func:`cryoden.nets.polyphase.merge_polyphase`)."""
        if self.blind_spot.kind != "pd":
            return network(images)
        shape = (int(images.shape[-2]), int(images.shape[-1]))
        return merge_polyphase(network(split_polyphase(images)), shape)

    def loss(
        self, network: nn.Module, batch: torch.Tensor, *, generator: torch.Generator
    ) -> torch.Tensor:
        """Masked loss: mask pixels, predict the patch, compare at the masked pixels only.

        Parameters
        ----------
        network
            Maps ``(B, 1, P, P)`` to ``(B, 1, P, P)``.
        batch
            ``(B, 1, P, P)`` noisy patches (the targets at the masked pixels).
        generator
            CPU generator drawing the masked positions and the replacements.
        """
        self._check_network(network)
        batch = self.training_view(batch)
        masked = self.mask(batch, generator=generator)
        prediction = network(masked.inputs)
        return regression_loss(prediction, batch.detach(), self.loss_kind, mask=masked.mask)

    def validation_loss(self, network: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        """Masked loss with a generator seeded with ``validation_seed`` (deterministic)."""
        generator = torch.Generator().manual_seed(self.validation_seed)
        return self.loss(network, batch, generator=generator)

    def _check_network(self, network: nn.Module) -> None:
        """Warn once when the network lacks the options of :attr:`network_tweaks`."""
        if self._network_checked:
            return
        self._network_checked = True
        config = getattr(network, "config", None)
        wrong = {
            key: getattr(config, key)
            for key, value in self.network_tweaks.items()
            if getattr(config, key, value) != value
        }
        if wrong:
            logger.warning(
                "%s expects a network with %s, got %s: checkerboard artefacts may remain",
                type(self).__name__,
                self.network_tweaks,
                wrong,
            )


class N2V2(Noise2Void):
    """The N2V2 training scheme (``"n2v2"``): Noise2Void with median replacement, for the
    blur-pool U-Net without top-level skip (:func:`n2v2_network_config`).

    Credit: Höck, Buchholz, Brachmann, Jug & Krull, "N2V2 - Fixing Noise2Void Checkerboard
    Artifacts with Modified Sampling Strategies and a Tweaked Network Architecture", ECCV
    Workshops 2022. It logs a warning when trained on a network without the N2V2 options.
    Parameters as :class:`Noise2Void` (``replacement`` defaults to ``"median"``).
    """

    name = "n2v2"
    default_replacement: Replacement = "median"

    @property
    def network_tweaks(self) -> dict[str, Any]:
        """Blur-pool downsampling and no top-level skip (:data:`N2V2_NETWORK_TWEAKS`)."""
        return dict(N2V2_NETWORK_TWEAKS)


def volume_variant(volumes: Sequence[Any]) -> tuple[str, float]:
    """The blind-spot variant (``"n2v"`` or ``"n2v2"``) that trains on these volumes ``(Z, Y,
    X)``, and their measured voxel SNR it is chosen from: plain Noise2Void at and above
    :data:`VOLUME_N2V_MIN_SNR`, N2V2 below.

    Raises
    ------
    ParameterError
        For volumes that cannot be measured (see
        :func:`~cryoden.training.blind_spot_3d.measure_volume_snr`).
    """
    snr = measure_volume_snr(volumes)
    variant = "n2v" if snr >= VOLUME_N2V_MIN_SNR else "n2v2"
    logger.info(
        "voxel SNR of the training volumes %.3f (%s %g): %s",
        snr, ">=" if variant == "n2v" else "<", VOLUME_N2V_MIN_SNR, variant,
    )  # fmt: skip
    return variant, snr


def volume_scheme(
    volumes: Sequence[Any], *, variant: str = "auto", blind_spot: BlindSpot | str = "auto",
    **options: Any,
) -> tuple[Noise2Void, float | None]:
    """The blind-spot scheme that trains on these volumes ``(Z, Y, X)``, and the voxel SNR its
    variant was chosen from (None when ``variant`` is given).

    ``variant`` ``"auto"`` chooses from the measured voxel SNR (:func:`volume_variant`);
    ``"n2v"`` and ``"n2v2"`` are taken as given. The blind spot comes from the volumes' noise
    correlation (:meth:`Noise2Void.for_volumes`). Train it on
    ``network_config.replace(**scheme.network_tweaks)``.
    """
    snr = None
    if variant == "auto":
        variant, snr = volume_variant(volumes)
    cls = N2V2 if variant == "n2v2" else Noise2Void
    return cls.for_volumes(volumes, blind_spot=blind_spot, **options), snr
