"""API-key authentication (``x-apikey`` header, any case) and request helpers."""

from __future__ import annotations

from fastapi import Request

from kinfile.errors import AuthenticationRequiredError, WrongCredentialsError
from kinfile.services import Services


def services_of(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def base_url(request: Request) -> str:
    configured = request.app.state.settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


def require_key(request: Request) -> str:
    """FastAPI dependency: the name of the key's owner, or a VT authentication error."""
    if not request.app.state.settings.auth:
        return "anonymous"
    key = request.headers.get("x-apikey")
    if not key:
        raise AuthenticationRequiredError("X-Apikey header is missing")
    owner = services_of(request).api_key_owner(key)
    if owner is None:
        raise WrongCredentialsError("Wrong API key")
    return owner
