"""The one error tree of kinfile.

Every error a user can see is a :class:`KinfileError`. Each class knows the VirusTotal error
code it is sent as, its HTTP status and the exit code of the CLI, so the API renders it in one
place (``api/app.py``) and the CLI in another (``cli/__init__.py``)::

    KinfileError                          500 ServerError              exit 1
    ├── BadRequestError                   400 BadRequestError          exit 2
    │   ├── InvalidArgumentError          400 InvalidArgumentError     exit 2
    │   ├── NotAvailableYet               400 NotAvailableYet          exit 2
    │   ├── UnselectiveContentQueryError  400 UnselectiveContent...    exit 2
    │   └── UnsupportedContentQueryError  400 UnsupportedContent...    exit 2
    ├── AuthenticationRequiredError       401                          exit 3
    ├── WrongCredentialsError             401                          exit 3
    ├── ForbiddenError                    403                          exit 3
    ├── NotFoundError                     404                          exit 4
    ├── AlreadyExistsError                409                          exit 5
    ├── PayloadTooLargeError              413 (VT has no code: BadRequestError on the wire)
    ├── FailedDependencyError             424                          exit 6
    ├── QuotaExceededError                429                          exit 7
    ├── TooManyRequestsError              429                          exit 7
    ├── TransientError                    503                          exit 8
    ├── DeadlineExceededError             504                          exit 9
    └── ConfigurationError                500 (bad settings)            exit 78

Errors may carry a character ``span`` (query errors) that renderers add to the message.
"""

from __future__ import annotations

from typing import ClassVar


class KinfileError(Exception):
    """Base class. Subclasses set the three class variables."""

    vt_code: ClassVar[str] = "ServerError"
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str = "", *, span: tuple[int, int] | None = None) -> None:
        super().__init__(message or self.__class__.__name__)
        self.message = message or self.__class__.__name__
        self.span = span

    def to_dict(self) -> dict[str, dict[str, str]]:
        """The VirusTotal error envelope ``{"error": {"code", "message"}}``."""
        return {"error": {"code": self.vt_code, "message": self.message}}


class BadRequestError(KinfileError):
    vt_code = "BadRequestError"
    http_status = 400
    exit_code = 2


class InvalidArgumentError(BadRequestError):
    vt_code = "InvalidArgumentError"


class NotAvailableYet(BadRequestError):
    vt_code = "NotAvailableYet"


class UnselectiveContentQueryError(BadRequestError):
    vt_code = "UnselectiveContentQueryError"


class UnsupportedContentQueryError(BadRequestError):
    vt_code = "UnsupportedContentQueryError"


class PayloadTooLargeError(BadRequestError):
    """The upload exceeds the configured size limit (VT answers such uploads with a 4xx)."""

    http_status = 413


class AuthenticationRequiredError(KinfileError):
    vt_code = "AuthenticationRequiredError"
    http_status = 401
    exit_code = 3


class WrongCredentialsError(KinfileError):
    vt_code = "WrongCredentialsError"
    http_status = 401
    exit_code = 3


class ForbiddenError(KinfileError):
    vt_code = "ForbiddenError"
    http_status = 403
    exit_code = 3


class NotFoundError(KinfileError):
    vt_code = "NotFoundError"
    http_status = 404
    exit_code = 4


class AlreadyExistsError(KinfileError):
    vt_code = "AlreadyExistsError"
    http_status = 409
    exit_code = 5


class FailedDependencyError(KinfileError):
    vt_code = "FailedDependencyError"
    http_status = 424
    exit_code = 6


class QuotaExceededError(KinfileError):
    vt_code = "QuotaExceededError"
    http_status = 429
    exit_code = 7


class TooManyRequestsError(KinfileError):
    vt_code = "TooManyRequestsError"
    http_status = 429
    exit_code = 7


class TransientError(KinfileError):
    vt_code = "TransientError"
    http_status = 503
    exit_code = 8


class DeadlineExceededError(KinfileError):
    vt_code = "DeadlineExceededError"
    http_status = 504
    exit_code = 9


class ConfigurationError(KinfileError):
    """Settings that cannot work (bad URL, unknown backend, missing optional dependency)."""

    exit_code = 78


ALL_ERRORS: tuple[type[KinfileError], ...] = (
    KinfileError,
    BadRequestError,
    InvalidArgumentError,
    NotAvailableYet,
    UnselectiveContentQueryError,
    UnsupportedContentQueryError,
    PayloadTooLargeError,
    AuthenticationRequiredError,
    WrongCredentialsError,
    ForbiddenError,
    NotFoundError,
    AlreadyExistsError,
    FailedDependencyError,
    QuotaExceededError,
    TooManyRequestsError,
    TransientError,
    DeadlineExceededError,
    ConfigurationError,
)
