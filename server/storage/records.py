"""The plain reads and writes every administered collection has (regions, branches, programs, assignments):
one document by id, a page sorted by a unique key, inserting one, and setting fields on one inside the
command's transaction. Each storage module names them for its documents (`org.branch_in = ...`), so the
commands keep reading in the domain's words and the query is written once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from server.db import Database, Doc
from server.storage.paging import after_filter, combine, page_of


@dataclass(frozen=True)
class Records:
    collection: str
    sort: list[tuple[str, int]] = field(default_factory=lambda: [("_id", 1)])

    async def by_id(self, db: Database, doc_id: str) -> Doc | None:
        return await db[self.collection].find_one({"_id": doc_id})

    async def by_id_in(self, db: Database, doc_id: str, session: AsyncClientSession) -> Doc | None:
        return await db[self.collection].find_one({"_id": doc_id}, session=session)

    async def page(
        self, db: Database, filters: dict[str, Any], limit: int, cursor: str | None
    ) -> tuple[list[Doc], str | None]:
        """`limit` documents matching `filters` after `cursor`, and the next page's cursor."""
        query = combine(filters, after_filter(self.sort, cursor))
        docs = await db[self.collection].find(query).sort(self.sort).limit(limit + 1).to_list()
        return page_of(docs, self.sort, limit)

    async def insert(self, db: Database, doc: Doc, session: AsyncClientSession) -> None:
        await db[self.collection].insert_one(doc, session=session)

    async def set_fields(self, db: Database, doc_id: str, changes: dict[str, Any],
                         session: AsyncClientSession) -> None:
        await db[self.collection].update_one({"_id": doc_id}, {"$set": changes}, session=session)
