"""The worker pool that does every piece of Pillow work, one per Services, started on first use."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, ParamSpec, TypeVar

if TYPE_CHECKING:
    from server.context import Shared

P = ParamSpec("P")
T = TypeVar("T")

# Pillow releases the GIL while decoding, so threads use every core; more workers than cores would
# only hold more decoded images in memory at once (a 12 MP photo is 36 MB decoded).
MAX_IMAGE_WORKERS = max(1, min(4, os.cpu_count() or 1))


def image_executor(shared: Shared) -> ThreadPoolExecutor:
    """The process's pool, created on first use (Services.close() shuts it down)."""
    if shared.image_pool is None:
        shared.image_pool = ThreadPoolExecutor(max_workers=MAX_IMAGE_WORKERS, thread_name_prefix="images")
    return shared.image_pool


async def run_image_work(shared: Shared, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run `fn` in the image pool and await its result."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(image_executor(shared), lambda: fn(*args, **kwargs))
