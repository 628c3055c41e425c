"""API rate limits that cost one cache operation per request.

DRF's own throttles keep every request's timestamp of the whole window in one cache entry and read, filter
and write that list on each request: under a generous limit (thousands per hour) the list grows to thousands
of entries, and (un)pickling it costs more than the answer itself. These count requests in fixed windows
with an atomic `incr` instead, which is also exact across processes when the cache is Redis.
"""

from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class FixedWindowThrottleMixin:
    """Allows `num_requests` per window of `duration` seconds, counted in the cache."""

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        self.window_start = self.now - self.now % self.duration
        window_key = f"{self.key}:{int(self.window_start)}"
        # add() is a no-op when the window's counter exists; the counter expires with its window.
        self.cache.add(window_key, 0, self.duration + 1)
        try:
            count = self.cache.incr(window_key)
        except ValueError:  # expired between add() and incr()
            self.cache.set(window_key, 1, self.duration + 1)
            count = 1
        return count <= self.num_requests

    def wait(self):
        """Seconds until the current window ends (the Retry-After of a 429)."""
        return max(1.0, self.window_start + self.duration - self.now)


class AnonFixedWindowThrottle(FixedWindowThrottleMixin, AnonRateThrottle):
    """Anonymous clients, by IP address; rate `THROTTLE_ANON`."""


class UserFixedWindowThrottle(FixedWindowThrottleMixin, UserRateThrottle):
    """Authenticated clients, by user; rate `THROTTLE_USER`. Anonymous clients are the anonymous throttle's
    alone (DRF's user throttle would count them a second time, by address, under the user rate)."""

    def get_cache_key(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return None
        return super().get_cache_key(request, view)
