"""What the console's screens need beyond the other areas: the re-score an appeal would cause, shown to
compliance before they confirm an overturn."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web
from pydantic import BaseModel

from server.domain import access
from server.http import authz
from server.http.api import ApiRouter, json_response, match_info
from server.keys import SERVICES
from server.services.appeal_preview import preview_overturn

router = ApiRouter("console")


class RescorePreviewPublic(BaseModel):
    appeal_id: str
    audit_id: str
    item_id: str
    current_score: float | None
    current_grade: str | None
    current_critical_failed: bool | None
    score_if_overturned: float | None
    grade_if_overturned: str | None
    critical_failed_if_overturned: bool


@router.get(
    "/api/v1/appeals/{appeal_id}/rescore-preview",
    summary="The audit's score now and if this pending appeal were overturned (nothing is written)",
    response=RescorePreviewPublic,
    roles=access.REVIEWERS,
    extra_responses={404: "No such appeal", 409: "The appeal is already decided"},
)
async def rescore_preview(request: web.Request) -> web.Response:
    preview = await preview_overturn(request.app[SERVICES], authz.principal(request), match_info(request, "appeal_id"))
    return json_response(RescorePreviewPublic.model_validate(asdict(preview)))
