"""Disc images: the built-in sample the main job boots, and builders for test images.

``SAMPLE_ISO`` is the sample's path inside the installed package, so code run from any
directory can boot it (``emu boot`` does when given no ISO).
"""

from pathlib import Path

SAMPLE_ISO = Path(__file__).resolve().with_name("sample.iso")
"""The built-in sample image (rebuilt by ``python -m images.builders sample``)."""

__all__ = ["SAMPLE_ISO"]
