"""Login throttling (django-axes): wrong passwords lock a username out from that address with a
clear page, the cool-off ends it, and the admin login is covered by the same rule."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from accounts.services import create_user
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-password"


@pytest.fixture
def ann():
    return create_user("ann", password=PASSWORD)[0]


def login(client: Client, password: str, url: str = "/accounts/login/", **extra):
    return client.post(url, {"username": "ann", "password": password}, **extra)


def test_wrong_passwords_lock_the_login_with_a_clear_message_until_the_cool_off(ann, settings):
    from django.conf import settings as live

    limit = live.AXES_FAILURE_LIMIT
    assert 3 <= limit <= 10  # the shipped setting, not one made up by this test
    settings.AXES_COOLOFF_TIME = timedelta(seconds=2)
    client = Client()
    for _ in range(limit - 1):
        wrong = login(client, "nope")
        assert wrong.status_code == 200 and b"Please enter a correct username" in wrong.content
    locked = login(client, "nope")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Login paused" in page and f"({limit} in a row)" in page and "2 seconds" in page
    # Locked means locked: the right password does not get in either, nor through the admin.
    assert login(client, PASSWORD).status_code == 429
    assert login(Client(), PASSWORD, "/admin/login/").status_code == 429
    assert "_auth_user_id" not in client.session
    # Another user from the same address is not affected (the lock is per username and address).
    create_user("bob", password=PASSWORD)
    other = Client().post("/accounts/login/", {"username": "bob", "password": PASSWORD})
    assert other.status_code == 302
    time.sleep(2.2)
    after = login(client, PASSWORD)
    assert after.status_code == 302 and client.session["_auth_user_id"] == str(ann.pk)


def test_a_script_gets_the_lockout_as_json(ann, settings):
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = login(client, "nope", HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert response.status_code == 429
    body = response.json()
    assert body["username"] == "ann" and body["cooloff_time"] == "PT15M"


def test_a_right_password_resets_the_count(ann, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        login(client, "nope")
    assert login(client, PASSWORD).status_code == 302
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(client, "nope").status_code == 200
