"""Upload size limits per kind, checked from the request's Content-Length before a byte of the body is read
(``UploadLimitMiddleware``); larger bodies get 413 with the limit in words. The content itself is checked by the
one reader, ``core.tabular.read_sheets`` (name vs content, zip and XML bombs, rows, columns, cells)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, JsonResponse

MB = 1024 * 1024


def limit_for(path: str) -> int:
    """The largest body a request to ``path`` may carry (the longest matching prefix of UPLOAD_LIMITS)."""
    best, limit = -1, settings.UPLOAD_DEFAULT_LIMIT
    for prefix, size in settings.UPLOAD_LIMITS.items():
        if path.startswith(prefix) and len(prefix) > best:
            best, limit = len(prefix), size
    return limit


class UploadLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method in ("POST", "PUT", "PATCH"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            limit = limit_for(request.path)
            if length > limit:
                text = f"文件过大：上限 {limit // MB} MB (the upload is larger than {limit // MB} MB)"
                if request.path.startswith("/api/"):
                    return JsonResponse({"detail": text, "field": "file"}, status=413)
                return HttpResponse(text, status=413, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
