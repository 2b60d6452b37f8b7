"""Django admin for instructors: only the competitions they organize, through every door (lists,
change pages, form choices, list filters), checked with the real test client on admin URLs."""

from __future__ import annotations

import re

import pytest
from competitions.models import Competition, Participation
from competitions.services import create_competition
from django.test import Client

from tests.platform.helpers import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def rivals(make_user):
    rival = make_user("rival", "instructor")
    hidden = create_competition("rival-secret", "Rival's hidden one", ["mnist"],
                                organizers=[rival], visibility=Competition.Visibility.UNLISTED)
    Participation.objects.create(competition=hidden, user=make_user("bob"))
    return hidden


def admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def options(page: str, name: str) -> set[str]:
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', page, re.S).group(1)
    return set(re.findall(r'<option value="(\d+)"', select))


def test_an_instructor_cannot_reach_another_competition_through_admin(competition, instructor,
                                                                      rivals, make_user):
    client = admin_client(instructor)
    listing = client.get("/admin/competitions/competition/").content.decode()
    assert "course" in listing and "rival-secret" not in listing
    # Another competition's change page is "not found" (a redirect to the index), not a form.
    change = client.get(f"/admin/competitions/competition/{rivals.pk}/change/")
    assert change.status_code == 302 and "Rival" not in change.content.decode()
    assert client.post(f"/admin/competitions/competition/{rivals.pk}/change/",
                       {"title": "Taken"}).status_code == 302
    rivals.refresh_from_db()
    assert rivals.title == "Rival's hidden one"
    # Participations: only his competitions' rows, filters and choices.
    participations = client.get("/admin/competitions/participation/").content.decode()
    assert "bob" not in participations and "Rival" not in participations
    add_page = client.get("/admin/competitions/participation/add/").content.decode()
    assert options(add_page, "competition") == {str(competition.pk)}
    joined = client.post("/admin/competitions/participation/add/",
                         {"competition": rivals.pk, "user": instructor.pk})
    assert joined.status_code == 200 and "Select a valid choice" in joined.content.decode()
    assert not Participation.objects.filter(competition=rivals, user=instructor).exists()
    # ... so the API still does not know the unlisted competition for him.
    assert client_for(instructor).get("/api/competitions/rival-secret/").status_code == 404
    # Adding someone to his own competition works.
    ann = make_user("ann")
    added = client.post("/admin/competitions/participation/add/",
                        {"competition": competition.pk, "user": ann.pk})
    assert added.status_code == 302 and competition.is_participant(ann)


def test_a_superuser_sees_every_competition(competition, rivals, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.org", "pw-root-123")
    client = admin_client(root)
    listing = client.get("/admin/competitions/competition/").content.decode()
    assert "course" in listing and "rival-secret" in listing
    add_page = client.get("/admin/competitions/participation/add/").content.decode()
    assert options(add_page, "competition") == {str(competition.pk), str(rivals.pk)}
    assert client.get(f"/admin/competitions/competition/{rivals.pk}/change/").status_code == 200


def test_an_instructor_stays_organizer_of_the_competition_he_edits(competition, instructor):
    client = admin_client(instructor)
    page = client.get(f"/admin/competitions/competition/{competition.pk}/change/")
    assert page.status_code == 200
    form = {"slug": "course", "title": "Renamed", "description": "", "start_0": "2026-01-01",
            "start_1": "00:00:00", "deadline_0": "2027-01-01", "deadline_1": "00:00:00",
            "visibility": "public", "reveal_private_after_deadline": "on", "organizers": [],
            "team_size_limit": "3",
            "tracks-TOTAL_FORMS": "0", "tracks-INITIAL_FORMS": "0"}
    response = client.post(f"/admin/competitions/competition/{competition.pk}/change/", form)
    assert response.status_code == 302, re.findall(r'class="errorlist[^"]*">(.*?)</ul>',
                                                   response.content.decode(), re.S)
    competition.refresh_from_db()
    assert competition.title == "Renamed" and competition.is_organizer(instructor)
