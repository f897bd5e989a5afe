"""Migration 1, the baseline: the stored shapes as docs/DATA-MODEL.md describes them when migrations began.

Data written before migrations existed already has this shape, so there is nothing to change: applying it
records that the database is at schema version 1, which every later migration starts from."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.migrations import Migration

if TYPE_CHECKING:
    from server.context import Services


async def _apply(services: Services) -> None:
    """Nothing to rewrite: releases before schema versions wrote exactly the baseline shapes."""


MIGRATION = Migration(1, "baseline", _apply)
