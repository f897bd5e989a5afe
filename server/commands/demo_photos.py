"""The after photos of generated history: a small JPEG per fix, stored through the photo pipeline.

A submitted fix needs at least one photo, and people open them (the verifier, the branch head, the audit
trail), so generated history gets real ones: each is made here, with the branch's local time of the
submission in its EXIF, and stored by server.photos.pipeline.store_photo as the branch head's upload at
that moment (a copy of the services on a clock standing at it), with its event, trail entry and thumbnails.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import random
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from PIL import Image, ImageDraw

from server.clock import FakeClock
from server.context import ActorInfo, Services
from server.db import Doc
from server.domain import rectification_rules as rules
from server.photos.owners import Owner
from server.photos.pipeline import store_photo
from server.photos.spool import Spool

SIZE = (320, 240)
QUALITY = 80
TAG_EXIF_IFD = 0x8769
TAG_DATETIME_ORIGINAL = 0x9003
TAG_OFFSET_TIME_ORIGINAL = 0x9011
SPOOL_LIMIT = 1 << 20
CONCURRENT_UPLOADS = 3  # more only adds write conflicts on the outbox


def fix_photo_jpeg(seed: str, taken: datetime, timezone: str) -> bytes:
    """A plain scene of blocks in colours drawn from `seed` (so no two fixes share bytes or look alike), with
    the capture time as a phone writes it: the local wall time and its UTC offset."""
    rng = random.Random(seed)
    image = Image.new("RGB", SIZE, tuple(rng.randrange(120, 230) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(SIZE[0]), rng.randrange(SIZE[1])
        w, h = rng.randrange(20, 160), rng.randrange(20, 120)
        draw.rectangle((x, y, x + w, y + h), fill=tuple(rng.randrange(256) for _ in range(3)))
    local = taken.astimezone(ZoneInfo(timezone))
    exif = Image.Exif()
    details = exif.get_ifd(TAG_EXIF_IFD)
    details[TAG_DATETIME_ORIGINAL] = f"{local:%Y:%m:%d %H:%M:%S}"
    details[TAG_OFFSET_TIME_ORIGINAL] = _offset(local)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=QUALITY, exif=exif)
    return out.getvalue()


def _offset(local: datetime) -> str:
    text = f"{local:%z}"  # +0800
    return f"{text[:3]}:{text[3:]}"


@dataclasses.dataclass
class HandIn:
    """A generated fix about to be handed in: the rectification as the upload finds it (open), who hands it in
    and when, and the workflow's changes from the hand-in on (`finish`, given the rectification with its
    photo). Decided when the history is drawn; finished once the photo is stored."""

    rect: Doc
    branch: Doc
    head_id: str | None
    at: datetime
    finish: Callable[[Doc], Doc]


async def hand_in_all(services: Services, hand_ins: list[HandIn], *, photos: bool = True) -> list[Doc]:
    """Store every hand-in's after photo, then return each rectification in its final state (stored too).

    The open rectifications are written first (a photo attaches to an open one); the uploads run a few at a
    time; the final states then replace the open ones. A photo costs 20-30 ms on a loaded 2-core machine (the
    demo's ~500 took 10-14 s at load 8-11): a benchmark's hundreds of thousands of audits pass photos=False
    and get ids that name no stored photo."""
    if not hand_ins:
        return []
    if not photos:
        finished = [h.finish(with_fix_photo(h.rect, f"gen-photo-{h.rect['_id']}", [])) for h in hand_ins]
        await services.db.rectifications.insert_many(finished, ordered=False)
        return finished
    db = services.db
    await db.rectifications.insert_many([h.rect for h in hand_ins], ordered=False)
    gate = asyncio.Semaphore(CONCURRENT_UPLOADS)

    async def upload(hand_in: HandIn) -> Doc:
        async with gate:
            photo_id, flags = await _store(services, hand_in)
        return hand_in.finish(with_fix_photo(hand_in.rect, photo_id, flags))

    finished = list(await asyncio.gather(*(upload(h) for h in hand_ins)))
    await db.rectifications.delete_many({"_id": {"$in": [h.rect["_id"] for h in hand_ins]}})
    await db.rectifications.insert_many(finished, ordered=False)
    return finished


async def _store(services: Services, hand_in: HandIn) -> tuple[str, list[str]]:
    """The after photo taken and uploaded at the hand-in: (photo id, its flags)."""
    rect = hand_in.rect
    if rect["status"] != rules.OPEN:
        raise ValueError(f"a fix photo is added to an open rectification, not a {rect['status']} one")
    then = dataclasses.replace(services, clock=FakeClock(hand_in.at))
    owner = Owner("rectification", rect["_id"], hand_in.branch, None, rectification=rect)
    actor = ActorInfo(user_id=hand_in.head_id, role=rules.BRANCH_HEAD)
    with Spool(SPOOL_LIMIT) as spool:
        spool.write(fix_photo_jpeg(rect["_id"], hand_in.at, rect.get("timezone") or "UTC"))
        stored = await store_photo(then, actor, owner, spool, "fix.jpg")
    return str(stored.doc["_id"]), list(stored.doc.get("flags") or [])


def with_fix_photo(rect: Doc, photo_id: str, flags: list[str]) -> dict[str, Any]:
    """The rectification as the upload left it: the photo listed, its flags added (as $addToSet does)."""
    merged = list(rect.get("flags") or [])
    merged += [flag for flag in flags if flag not in merged]
    changed: dict[str, Any] = {**rect, "photo_ids": [*rect.get("photo_ids", []), photo_id]}
    if merged:
        changed["flags"] = merged
    return changed
