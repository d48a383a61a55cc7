"""Rendered outputs kept in the cache port (services/caching.py `RenderedOutputs`): a second
rendering of the same variant is served from the cache without reading the object, another
variant is rendered, and the entity tag names exactly the variant."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hounsfield.adapters.cache.memory import MemoryCache
from hounsfield.services.caching import RenderedOutputs
from hounsfield.services.pixels.render import JPEG, PNG, RenderOptions, Window, variant
from hounsfield.services.pixels.service import PixelService
from tests.pixelsupport import PixelArchive, pixel_archive


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[PixelArchive]:
    with pixel_archive(tmp_path, ("CT_small.dcm",)) as built:
        yield built


def test_second_rendering_comes_from_the_cache(archive: PixelArchive) -> None:
    pixels = PixelService(archive.pixels.retrieve, RenderedOutputs(MemoryCache()))
    instance = archive.instances["CT_small.dcm"]
    options = RenderOptions(PNG, Window(40, 400))
    first = pixels.render(instance, [1], options)
    reads: list[str] = []

    def no_read(*args: object, **kwargs: object) -> None:
        reads.append("read")
        raise AssertionError("the object was read although its rendering is cached")

    original = pixels.source
    pixels.source = no_read  # type: ignore[assignment,method-assign]
    assert pixels.render(instance, [1], options) == first
    assert reads == []
    pixels.source = original  # type: ignore[method-assign]
    other = pixels.render(instance, [1], RenderOptions(PNG, Window(40, 401)))
    assert other != first


def test_etag_depends_on_content_and_variant(archive: PixelArchive) -> None:
    instance = archive.instances["CT_small.dcm"]
    pixels = archive.pixels
    jpeg = variant([1], RenderOptions(JPEG), None)
    png = variant([1], RenderOptions(PNG), None)
    assert pixels.etag(instance, jpeg) == pixels.etag(instance, jpeg)
    assert pixels.etag(instance, jpeg) != pixels.etag(instance, png)
    assert pixels.etag(instance, variant([1], RenderOptions(JPEG), 128)) != pixels.etag(
        instance, jpeg
    )


def test_decoded_frames_are_kept_within_their_bound(tmp_path: Path) -> None:
    with pixel_archive(tmp_path, ("examples_ybr_color.dcm",)) as archive:
        instance = archive.instances["examples_ybr_color.dcm"]
        frame_bytes = 240 * 320 * 3
        pixels = PixelService(archive.pixels.retrieve, decoded_bytes=4 * frame_bytes)
        source = pixels.source(instance)
        first = pixels.decode(source, 1)
        assert pixels.decode(source, 1) is first  # kept
        assert not first.array.flags.writeable  # shared, so read-only
        for number in range(2, 8):
            pixels.decode(source, number)
        assert pixels.decode(source, 1) is not first  # evicted: at most 4 frames are kept
        assert pixels._decoded_size <= 4 * frame_bytes
        streamed = list(pixels.frames(source))  # one-pass work does not fill the memory
        assert len(streamed) == 30 and pixels._decoded_size <= 4 * frame_bytes
