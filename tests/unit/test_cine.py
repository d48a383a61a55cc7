"""The bounds of animations (services/pixels/render.py) and the pace of series cine
(services/pixels/cine.py)."""

from __future__ import annotations

import numpy as np
import pytest

from hounsfield.domain.model import PixelLayout
from hounsfield.ports.index import StoredInstance
from hounsfield.services.pixels import cine, render
from hounsfield.services.pixels.render import GIF, RenderOptions, Viewport


def test_frames_beyond_the_cap_are_refused() -> None:
    render.check_animation_bounds(render.MAX_ANIMATION_FRAMES, 16, 16, 1, RenderOptions(GIF))
    cap = render.MAX_ANIMATION_FRAMES
    with pytest.raises(render.AnimationTooLargeError, match=f"at most {cap}"):
        render.check_animation_bounds(render.MAX_ANIMATION_FRAMES + 1, 1, 1, 1, RenderOptions(GIF))


def test_rendered_bytes_are_bounded_at_the_viewport_size() -> None:
    # 1000 colour frames of 512x512 would take 750 MiB; at 128x128 they take 47 MiB.
    with pytest.raises(render.AnimationTooLargeError, match="MiB"):
        render.check_animation_bounds(1000, 512, 512, 3, RenderOptions(GIF))
    small = RenderOptions(GIF, viewport=Viewport(128, 128))
    render.check_animation_bounds(1000, 512, 512, 3, small)
    render.check_animation_bounds(1000, 512, 512, 1, RenderOptions(GIF))  # 250 MiB of grey: within


def _instance(frames: int, layout: bool) -> StoredInstance:
    frame = ((0, 1),)
    pixel = PixelLayout(0, frames, False, tuple(frame for _ in range(frames))) if layout else None
    return StoredInstance(
        "p", "1", "1.1", "1.1.1", "1.2", "1.2.840.10008.1.2.1", "k", 1, "s", pixel, {}, frames
    )


def test_frame_total_comes_from_the_index() -> None:
    assert cine.frame_total([_instance(3, True), _instance(1, False), _instance(0, False)]) == 5


def test_pace_of_a_streamed_multipart() -> None:
    assert cine.pace(10.0, 0, 4.0, 10.0) == 0.0
    assert cine.pace(10.0, 2, 4.0, 10.1) == pytest.approx(0.4)
    assert cine.pace(10.0, 2, 4.0, 11.0) == 0.0  # rendering was slower than the pace


def test_pictures_of_an_animation_take_the_first_ones_size_and_mode() -> None:
    first = np.zeros((4, 6, 3), dtype=np.uint8)
    grey = np.full((8, 12), 200, dtype=np.uint8)
    conformed = cine._conform(grey, first)
    assert conformed.shape == (4, 6, 3) and int(conformed.min()) == 200
