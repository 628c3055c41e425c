"""Offset pages as the Hugging Face Hub serves its lists (`/api/models`, a tree; later a commit listing): a
bare JSON array, and `Link: <absolute URL>; rel="next"` while more follows. The next page's URL is the same
query with the next offset and the page size, on the hub's public base URL."""

from urllib.parse import urlencode

from rest_framework import exceptions

from hub.public_urls import public_url

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# PostgreSQL's OFFSET is a 64-bit integer; an offset past every row gives an empty page whatever its size.
MAX_OFFSET = 2**62


def bounded_int(raw, default: int, low: int, high: int | None, name: str) -> int:
    """A whole-number query parameter: `default` when absent, at most `high`; a 400 below `low` or when it
    is not a number."""
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:  # also for more than 4,300 digits, which Python refuses to convert
        raise exceptions.ValidationError({name: f"must be a whole number, got {raw[:40]!r}."}) from None
    if value < low:
        raise exceptions.ValidationError({name: f"must be at least {low}, got {value}."})
    return min(value, high) if high is not None else value


class OffsetPage:
    """Which slice of a list a request asks for: from the offset in `offset_parameter` (0 by default), `limit`
    entries (`default_size` by default, at most MAX_PAGE_SIZE)."""

    def __init__(self, request, offset_parameter: str, default_size: int):
        params = request.query_params
        self.request, self.offset_parameter = request, offset_parameter
        self.size = bounded_int(params.get("limit"), default_size, 1, MAX_PAGE_SIZE, "limit")
        self.offset = bounded_int(params.get(offset_parameter), 0, 0, MAX_OFFSET, offset_parameter)

    @property
    def end(self) -> int:
        return self.offset + self.size

    def link_next(self, response) -> None:
        """Announce the page after this one on `response` (`Link: <...>; rel="next"`)."""
        query = self.request.query_params.copy()
        query[self.offset_parameter] = str(self.end)
        query["limit"] = str(self.size)
        url = public_url(self.request, f"{self.request.path}?{urlencode(sorted(query.lists()), doseq=True)}")
        response["Link"] = f'<{url}>; rel="next"'
