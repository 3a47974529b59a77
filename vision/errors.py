"""The one exception family of a scan: raised in vision, models, pipeline; mapped to HTTP in api."""


class ScanError(Exception):
    """A scan cannot go on; `code` is stable and machine-readable, the message is for people."""

    code = "scan_error"
    status_code = 422

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UnsupportedMediaError(ScanError):
    """The bytes are not an image type we accept (judged from the bytes, never the name)."""

    code = "unsupported_media_type"
    status_code = 415


class DecodeError(ScanError):
    """The bytes claim to be an image but cannot be decoded (corrupt, truncated)."""

    code = "undecodable_image"
    status_code = 422


class ImageTooLargeError(ScanError):
    """Too many bytes or too many pixels (decompression bombs)."""

    code = "image_too_large"
    status_code = 413


class EmptyUploadError(ScanError):
    code = "empty_upload"
    status_code = 422


class NotFoundError(ScanError):
    code = "not_found"
    status_code = 404


class ConflictError(ScanError):
    code = "conflict"
    status_code = 409


class ModelNotReadyError(ScanError):
    """A model or index file is missing or still loading; the caller may retry later."""

    code = "model_not_ready"
    status_code = 503


class TransientError(ScanError):
    """A dependency (database, broker, storage) is briefly unavailable; retry with backoff."""

    code = "unavailable"
    status_code = 503
