"""Who may call what: API keys for the prediction endpoints, the admin token for management.

* Prediction endpoints (``ApiKeyDep``: /predict, /explain, /samples) are open by default. With API_KEYS set
  (comma-separated), a request needs ``Authorization: Bearer <one of the keys>``; otherwise 401 JSON with
  ``WWW-Authenticate: Bearer``. Probes and read-only status (/health, /ready, /metrics, /metrics/prometheus) and the
  documentation stay open: orchestrators, scrapers and people reading /docs hold no key, and none of them runs the
  model or returns data (docs/security.md).
* Management endpoints (``AdminDep``: anything that changes what the service does, such as pinning a model) always
  need ``Authorization: Bearer <ADMIN_TOKEN>``. With ADMIN_TOKEN empty they are disabled: 403 for everyone, so a
  deployment that never set a token has no way in, rather than an open door.

Secrets are compared as SHA-256 digests with ``hmac.compare_digest``, against every configured key (no early exit):
equal-length digests leave neither a secret's length nor how much of a guess was right in the answer's timing. They
are never logged, echoed in an answer or counted under their value. The two schemes are declared with FastAPI's
``HTTPBearer``, so /docs and /openapi.json show them on the operations that need them.
"""

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.inference.app.deps import ServingDep
from services.inference.app.errors import ApiError

api_key_scheme = HTTPBearer(scheme_name="ApiKey", auto_error=False,
                            description="one of API_KEYS; only needed when the server sets API_KEYS")
admin_scheme = HTTPBearer(scheme_name="AdminToken", auto_error=False,
                          description="ADMIN_TOKEN; management endpoints are disabled when the server sets none")

Credentials = HTTPAuthorizationCredentials | None


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


def matches_any(given: str, secrets: list[str]) -> bool:
    """Whether ``given`` equals one of ``secrets``, comparing with every one in constant time."""
    given_digest, found = _digest(given), False
    for secret in secrets:
        found |= hmac.compare_digest(given_digest, _digest(secret))
    return found


async def require_api_key(serving: ServingDep, credentials: Annotated[Credentials, Depends(api_key_scheme)]) -> None:
    keys = serving.settings.api_key_list
    if not keys:
        return
    if credentials is None:
        raise ApiError(401, "api_key_required", "this server needs an API key: send `Authorization: Bearer <key>`",
                       headers={"WWW-Authenticate": "Bearer"})
    if not matches_any(credentials.credentials, keys):
        raise ApiError(401, "invalid_api_key", "the API key is not one this server accepts",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


async def require_admin(serving: ServingDep, credentials: Annotated[Credentials, Depends(admin_scheme)]) -> None:
    token = serving.settings.admin_token.get_secret_value()
    if not token:
        raise ApiError(403, "management_disabled", "management endpoints are disabled: the server sets no "
                                                   "ADMIN_TOKEN")
    if credentials is None or not matches_any(credentials.credentials, [token]):
        raise ApiError(403, "admin_token_required", "this is a management endpoint: send "
                                                    "`Authorization: Bearer <ADMIN_TOKEN>`")


ApiKeyDep = Depends(require_api_key)  # for ``dependencies=[ApiKeyDep]`` on a router or route
AdminDep = Depends(require_admin)
