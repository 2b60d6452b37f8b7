"""Sign-ups and join-code guesses throttled per client address (enrollment.throttles): a clear
message and HTTP 429, never a 500; right codes are free; another address is not affected; the
wait ends; a forged X-Forwarded-For does not give a fresh allowance."""

from __future__ import annotations

import time

import pytest
from django.conf import settings as live
from django.contrib.auth import get_user_model
from django.test import Client
from enrollment import services as enrollment
from enrollment.throttles import JoinCodeThrottle, SignUpThrottle, wait_in_words
from rest_framework.throttling import SimpleRateThrottle

pytestmark = pytest.mark.django_db


@pytest.fixture
def code(unlisted):
    enrollment.set_enabled(unlisted, True)
    return enrollment.join_link(unlisted).code


def rates(monkeypatch, **chosen: str) -> None:
    for throttle in (SignUpThrottle, JoinCodeThrottle):
        monkeypatch.setattr(throttle, "THROTTLE_RATES", {**throttle.THROTTLE_RATES, **chosen})


def sign_up(client: Client, code: str, name: str, **extra):
    return client.post(f"/join/{code}/", {"username": name, "email": f"{name}@uni.edu",
                                          "password": "a-long-password"}, **extra)


def test_the_shipped_rates_are_set_and_read():
    shipped = live.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    for scope in ("signups", "join_codes"):
        requests, seconds = SimpleRateThrottle.parse_rate(None, shipped[scope])
        assert requests >= 10 and seconds >= 60, (scope, shipped[scope])


def test_too_many_sign_ups_from_one_address_answer_429_with_the_wait(code, monkeypatch):
    rates(monkeypatch, signups="3/hour")
    client = Client()
    assert sign_up(client, code, "ann").status_code == 302
    # A refused try counts too (a script trying names costs the same).
    assert sign_up(Client(), code, "ann").status_code == 400
    assert sign_up(Client(), code, "bob").status_code == 302
    refused = sign_up(Client(), code, "cy")
    page = refused.content.decode()
    assert refused.status_code == 429, page
    assert "Too many sign-ups from your network" in page and "60 minutes" in page
    assert not get_user_model().objects.filter(username="cy").exists()
    # The page with the form still shows, and another address signs up.
    assert Client().get(f"/join/{code}/").status_code == 200
    assert sign_up(Client(REMOTE_ADDR="10.1.2.3"), code, "cy").status_code == 302
    # X-Forwarded-For is not trusted without ARENA_NUM_PROXIES: no fresh allowance from it.
    assert sign_up(Client(), code, "dee", HTTP_X_FORWARDED_FOR="10.9.9.9").status_code == 429


def test_wrong_join_codes_are_throttled_and_right_ones_are_free(code, monkeypatch):
    rates(monkeypatch, join_codes="3/hour")
    client = Client()
    for _ in range(5):  # a class typing the right code is never held up
        assert client.post("/join/", {"code": code}).status_code == 302
        assert client.get(f"/join/{code}/").status_code == 200
    assert client.post("/join/", {"code": "guess-1"}).status_code == 400
    assert client.get("/join/guess-2/").status_code == 404
    assert client.post("/join/", {"code": "guess-3"}).status_code == 400
    blocked = client.post("/join/", {"code": "guess-4"})
    page = blocked.content.decode()
    assert blocked.status_code == 429, page
    assert "Too many wrong join codes from your network" in page and "minutes" in page
    # Blocked means the guesser learns nothing: the right code and link answer the same 429.
    assert client.post("/join/", {"code": code}).status_code == 429
    assert client.get(f"/join/{code}/").status_code == 429
    assert sign_up(client, code, "eve").status_code == 429
    assert not get_user_model().objects.filter(username="eve").exists()
    # Another address is not affected.
    assert Client(REMOTE_ADDR="10.1.2.3").post("/join/", {"code": code}).status_code == 302


def test_the_wait_ends(code, monkeypatch):
    rates(monkeypatch, join_codes="2/sec", signups="1/sec")
    client = Client()
    for guess in ("a", "b"):
        assert client.get(f"/join/{guess}/").status_code == 404
    assert client.get("/join/c/").status_code == 429
    assert sign_up(client, code, "fay").status_code == 429  # the code throttle, first
    time.sleep(1.1)
    assert sign_up(client, code, "fay").status_code == 302
    assert sign_up(Client(), code, "gus").status_code == 429  # one sign-up a second
    assert "1 second" in sign_up(Client(), code, "gus").content.decode()


def test_the_wait_reads_in_words_never_too_early():
    from datetime import timedelta

    assert wait_in_words(timedelta(seconds=1)) == "1 second"
    assert wait_in_words(timedelta(seconds=90)) == "90 seconds"
    assert wait_in_words(timedelta(seconds=121)) == "3 minutes"
    assert wait_in_words(timedelta(hours=2, seconds=1)) == "3 hours"
