"""AttachImage on 10,000 files and on an 8 GiB sparse image, against a small image.

Target: constant in file count and image size, so each group pairs the big
image ("emu") with a small patterned image ("raw", the baseline).  Resident
memory growth while attached is in ``extra_info["rss_growth_bytes"]``.
"""

from __future__ import annotations

import pytest

from emu.tools.bench import attacher, many_files_image, rss_bytes, small_image, sparse_image

BIG = {"10k-files": many_files_image, "8g-sparse": sparse_image}


@pytest.fixture(scope="module")
def api():
    attach, release, close, how = attacher()
    yield attach, release, how
    close()


@pytest.mark.parametrize("kind", ["raw", "emu"])
@pytest.mark.parametrize("name", list(BIG))
def test_attach_image(api, benchmark, record, name, kind):
    attach, release, how = api
    path = BIG[name]() if kind == "emu" else small_image()

    def once():
        attach(path)
        release()

    before = rss_bytes()
    attach(path)
    benchmark.extra_info["rss_growth_bytes"] = rss_bytes() - before
    benchmark.extra_info["how"] = how
    release()
    record(f"attach-{name}", kind, once, "≈ 1× (constant)")
