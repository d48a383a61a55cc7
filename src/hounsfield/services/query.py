"""Query: QIDO-RS and C-FIND both end here, with the same AST and the same matcher."""

from __future__ import annotations

from hounsfield.domain.query import Query
from hounsfield.ports.index import IndexStore, QueryPage


class QueryService:
    def __init__(self, index: IndexStore, *, max_limit: int = 1000) -> None:
        self.index = index
        self.max_limit = max_limit

    def search(self, query: Query) -> tuple[QueryPage, bool]:
        """Run the query with the server's cap on results; the flag says the cap applied."""
        capped = query.limit is None or query.limit > self.max_limit
        if capped:
            from dataclasses import replace

            query = replace(query, limit=self.max_limit)
        page = self.index.query(query)
        return page, capped and page.more
