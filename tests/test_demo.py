"""`make run` seeds a demo with work in it: visits for the field roles and released history for the others."""

from __future__ import annotations

import json

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.checklists.publishing import publish_shipped
from server.context import Services
from server.demo import seed_demo_if_empty
from tests.conftest import Api


async def test_first_start_seeds_visits_and_history(services: Services) -> None:
    services.settings.publish_checklists = True
    await publish_shipped(services)
    assert await seed_demo_if_empty(services)
    assert not await seed_demo_if_empty(services)  # once per database
    credentials = json.loads((services.settings.var_dir / "demo-credentials.json").read_text())
    app = create_app(services, start_jobs=False, prepare_data=False, close_client=False)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with ClientSession() as session:
            api = Api(session, str(server.make_url("")).rstrip("/"), credentials)
            mine = await api.json("GET", "/api/v1/assignments?mine=true&limit=50", "inspector", expect=200)
            assert mine["items"] and {a["checklist_key"] for a in mine["items"]} == {"branch-service"}
            covert = await api.json("GET", "/api/v1/assignments?mine=true&limit=50", "mystery_shopper", expect=200)
            assert covert["items"] and all(a["covert"] for a in covert["items"])
            released = await api.json("GET", "/api/v1/audits?limit=5", "branch_head", expect=200)
            assert released["items"] and all(r["status"] == "released" for r in released["items"])
            card = await api.json("GET", "/api/v1/reports/scorecard?group_by=branch", "compliance", expect=200)
            assert card["items"]
    finally:
        await server.close()
