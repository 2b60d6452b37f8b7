"""Sign-up and join-code throttles per client address: DRF's rate throttles, the project's one
way to count a rate (the API's and the upload page's), in the same cache and with the same rule
for the address (``REMOTE_ADDR``; ``X-Forwarded-For`` only behind ``ARENA_NUM_PROXIES``).
Wrong passwords stay django-axes' (``AXES_*``): it locks a username, and a sign-up has none yet.

The rates (``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``): ``signups``, every sign-up sent from
one address; ``join_codes``, the wrong codes tried from one address (right ones are free, so a
class behind one campus address is not held up by its own typos)."""

from __future__ import annotations

from datetime import timedelta

from django.http import HttpRequest
from rest_framework.throttling import SimpleRateThrottle


class AddressThrottle(SimpleRateThrottle):
    """A rate per client address, signed in or not."""

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def refusal(self, request: HttpRequest) -> timedelta | None:
        """How long the address must wait when its allowance is used up, or None; counts
        nothing (``record`` does)."""
        self.key = self.get_cache_key(request, None)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        if len(self.history) < self.num_requests:
            return None
        return timedelta(seconds=max(1, round(self.wait() or self.duration)))

    def record(self, request: HttpRequest) -> None:
        """Count one try of ``request``'s address (after ``refusal`` looked at it)."""
        if getattr(self, "key", None) is None:
            self.refusal(request)
        self.throttle_success()


class SignUpThrottle(AddressThrottle):
    scope = "signups"


class JoinCodeThrottle(AddressThrottle):
    scope = "join_codes"


def wait_in_words(wait: timedelta) -> str:
    """"40 seconds", "12 minutes", "2 hours" (rounded up: never too early)."""
    seconds = int(wait.total_seconds())
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= 2 * size:
            count = -(-seconds // size)
            return f"{count} {unit}s"
    return f"{seconds} second" + ("s" if seconds != 1 else "")
