"""Hounsfield: a fast, standards-correct medical imaging archive."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hounsfield")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"
