import assert from "node:assert/strict";
import { test } from "node:test";
import { apiSearch, filtersFromQuery, queryOf } from "./historyFilters.ts";

test("filters come from the URL's query, unknown and empty keys dropped", () => {
  const filters = filtersFromQuery({ branch_id: "b1", status: "released", min_score: "", evil: "x", grade: ["A", "B"] });
  assert.deepEqual(filters, { branch_id: "b1", status: "released", grade: "A" });
});

test("filters round-trip through the URL with the cursor", () => {
  const filters = { region_id: "r", from: "2026-11-01T00:00:00Z", has_flag: "any" };
  const query = queryOf(filters, "abc");
  assert.deepEqual(query, { region_id: "r", from: "2026-11-01T00:00:00Z", has_flag: "any", cursor: "abc" });
  assert.deepEqual(filtersFromQuery(query), filters);
});

test("the API search string is the same filter for the list and the exports", () => {
  assert.equal(apiSearch({ status: "released", min_score: "50" }), "?status=released&min_score=50");
  assert.equal(apiSearch({ status: "released" }, { lang: "en" }), "?status=released&lang=en");
  assert.equal(apiSearch({}), "");
});
