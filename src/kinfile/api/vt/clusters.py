"""Daily vhash clusters on the wire: v2 ``/vtapi/v2/file/clusters`` and v3 ``/stats/vhash_clusters``.

v2 (VirusTotal's private API v2, shape of ../shared/vt/API_NOTES.md §4.1): the key is the
``apikey`` query parameter; a missing or unknown key is HTTP 403 with an empty body, a request
without ``date`` is HTTP 400; otherwise HTTP 200 with ``response_code`` 1 (clusters enclosed),
0 (no candidates that day) or -1 (malformed date or window) and ``verbose_msg``.

v3 (§4.2): ``{"meta": {"count", "num_top200", "candidates"}, "data": [cluster objects]}`` with
``x-apikey`` authentication and VT v3 errors; ``date`` defaults to today (UTC).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from kinfile import clusters
from kinfile.api.auth import require_key, services_of
from kinfile.api.responses import JSONResponse
from kinfile.errors import InvalidArgumentError

router = APIRouter(dependencies=[Depends(require_key)])
v2_router = APIRouter()

V2_FOUND = "Clustering information enclosed"
V2_NONE = "No clustering information for the requested date"


def _days(value: str | None) -> int:
    if value is None or value == "":
        return 1
    try:
        return clusters.check_days(int(value))
    except ValueError as exc:
        raise InvalidArgumentError(f"days must be an integer, got {value!r}") from exc


@router.get("/stats/vhash_clusters")
def vhash_clusters(request: Request, date: str | None = None, days: str | None = None) -> JSONResponse:
    day = clusters.day_clusters(services_of(request).store, date, _days(days))
    items = [
        {
            "type": "cluster",
            "id": f"vhash{c.vhash}",
            "attributes": {
                "files": c.size,
                "discriminator": c.vhash,
                "vector": "vhash",
                "mean_positives": c.avg_positives,
                "name": c.label,
            },
        }
        for c in day.clusters
    ]
    meta = {"count": day.num_clusters, "num_top200": day.size_top200, "candidates": day.num_candidates}
    return JSONResponse({"meta": meta, "data": items})


def _v2_authorised(request: Request, apikey: str | None) -> bool:
    if not request.app.state.settings.auth:
        return True
    return bool(apikey) and services_of(request).api_key_owner(apikey or "") is not None


@v2_router.get("/vtapi/v2/file/clusters")
def v2_file_clusters(
    request: Request, apikey: str | None = None, date: str | None = None, days: str | None = None
) -> Response:
    if not _v2_authorised(request, apikey):
        return Response(status_code=403)
    if date is None:
        return JSONResponse({"response_code": -1, "verbose_msg": "Missing parameter: date"}, status_code=400)
    try:
        day = clusters.day_clusters(services_of(request).store, date, _days(days))
    except InvalidArgumentError as exc:
        return JSONResponse({"response_code": -1, "verbose_msg": exc.message})
    if not day.num_candidates:
        return JSONResponse({"response_code": 0, "verbose_msg": V2_NONE})
    return JSONResponse(v2_body(day))


def v2_body(day: clusters.ClusterDay) -> dict[str, Any]:
    return {
        "response_code": 1,
        "verbose_msg": V2_FOUND,
        "num_candidates": day.num_candidates,
        "num_clusters": day.num_clusters,
        "size_top200": day.size_top200,
        "clusters": [
            {"label": c.label, "avg_positives": c.avg_positives, "id": c.cluster_id(day.date), "size": c.size}
            for c in day.clusters
        ],
    }
