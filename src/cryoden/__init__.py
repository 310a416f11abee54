"""cryoden: deep-learning denoising of cryo-EM images."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cryoden")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0"

__all__ = ["__version__"]
