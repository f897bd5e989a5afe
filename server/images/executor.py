"""The worker pool that does every piece of Pillow work, one per Services, started on first use."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_EXTRAS_KEY = "image_executor"
# Pillow releases the GIL while decoding, so threads use every core; more workers than cores would
# only hold more decoded images in memory at once (a 12 MP photo is 36 MB decoded).
MAX_IMAGE_WORKERS = max(1, min(4, os.cpu_count() or 1))


def image_executor(extras: dict[str, Any]) -> ThreadPoolExecutor:
    """The pool stored on a Services' extras, created lazily."""
    pool = extras.get(_EXTRAS_KEY)
    if not isinstance(pool, ThreadPoolExecutor):
        pool = ThreadPoolExecutor(max_workers=MAX_IMAGE_WORKERS, thread_name_prefix="images")
        extras[_EXTRAS_KEY] = pool
    return pool


async def run_image_work(extras: dict[str, Any], fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run `fn` in the image pool and await its result."""
    loop = asyncio.get_running_loop()
    pool = image_executor(extras)
    return await loop.run_in_executor(pool, lambda: fn(*args, **kwargs))


def shutdown_image_executor(extras: dict[str, Any]) -> None:
    pool = extras.pop(_EXTRAS_KEY, None)
    if isinstance(pool, ThreadPoolExecutor):
        pool.shutdown(wait=False, cancel_futures=True)
