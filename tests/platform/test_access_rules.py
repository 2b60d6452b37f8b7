"""Who may see and do what, in one place: the visibility queryset method and the permission
classes of ``competitions`` that the API and the web pages both use (web imports nothing from
api)."""

from __future__ import annotations

import ast
from datetime import timedelta

import pytest
from competitions.models import Competition, Participation
from competitions.permissions import (
    IsOrganizer,
    IsParticipant,
    MayJoin,
    MaySeePrivate,
    MayView,
    allowed,
    competition_for,
)
from competitions.querysets import CompetitionQuerySet
from competitions.services import create_competition
from django.contrib.auth.models import AnonymousUser
from django.http import Http404
from django.test import RequestFactory
from django.utils import timezone

from tests.conftest import REPO_ROOT
from tests.platform.helpers import client_for

pytestmark = pytest.mark.django_db


def test_web_imports_nothing_from_api():
    for path in (REPO_ROOT / "platform" / "web").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                assert name != "api" and not name.startswith("api."), (path, name)


@pytest.fixture
def people(competition, unlisted, closed, make_user, django_user_model):
    member = make_user("member")
    Participation.objects.create(competition=unlisted, user=member)
    return {"anonymous": AnonymousUser(), "outsider": make_user("outsider"), "member": member,
            "organizer": competition.organizers.get(),
            "root": django_user_model.objects.create_superuser("root", "r@example.org", "pw-123")}


def request_as(user):
    request = RequestFactory().get("/")
    request.user = user
    return request


def test_visible_to_is_the_models_can_view_rule_for_everyone(people):
    assert isinstance(Competition.objects.all(), CompetitionQuerySet)
    everything = list(Competition.objects.all())
    assert len(everything) == 3
    for who, user in people.items():
        visible = set(Competition.objects.visible_to(user).values_list("slug", flat=True))
        assert visible == {c.slug for c in everything if c.can_view(user)}, who
    assert set(Competition.objects.visible_to(people["anonymous"]).values_list("slug", flat=True)) == {
        "course", "over"}
    assert "secret" in Competition.objects.visible_to(people["member"]).values_list("slug", flat=True)
    # No duplicate rows from the joins (organizer and participant of the same competition).
    Participation.objects.create(competition=Competition.objects.get(slug="secret"),
                                 user=people["organizer"])
    slugs = list(Competition.objects.visible_to(people["organizer"]).values_list("slug", flat=True))
    assert sorted(slugs) == ["course", "over", "secret"]
    assert set(Competition.objects.organized_by(people["organizer"]).values_list(
        "slug", flat=True)) == {"course", "secret", "over"}
    assert not Competition.objects.organized_by(people["outsider"]).exists()


def test_permission_classes_say_who_may_do_what(people, unlisted, competition):
    def may(permission, who, target):
        return allowed(permission, request_as(people[who]), target)

    assert [may(MayView, w, unlisted) for w in people] == [False, False, True, True, True]
    assert [may(IsOrganizer, w, unlisted) for w in people] == [False, False, False, True, True]
    assert [may(IsParticipant, w, unlisted) for w in people] == [False, False, True, True, True]
    assert [may(MayJoin, w, unlisted) for w in people] == [False, False, False, True, True]
    assert all(may(MayJoin, w, competition) for w in people)
    assert [may(MaySeePrivate, w, competition) for w in people] == [
        False, False, False, True, True]
    unlisted.deadline = timezone.now() - timedelta(seconds=1)
    unlisted.start = unlisted.deadline - timedelta(days=1)
    assert may(MaySeePrivate, "anonymous", unlisted)  # revealed after the deadline
    assert competition_for(request_as(people["member"]), "secret") == unlisted
    with pytest.raises(Http404):
        competition_for(request_as(people["outsider"]), "secret")


def test_api_and_page_answer_by_the_same_rules(people, unlisted, competition, make_user):
    outsider = people["outsider"]
    outsider.api_token = outsider.auth_token.key
    api = client_for(outsider)
    assert api.get("/api/competitions/secret/").status_code == 404
    assert api.post("/api/competitions/secret/join/").status_code == 404
    refused = api.get("/api/competitions/course/leaderboard/", {"split": "private"})
    assert refused.status_code == 403 and refused.json()["detail"] == MaySeePrivate.message
    csv = api.get("/api/competitions/course/results.csv")
    assert csv.status_code == 403 and csv.json()["detail"] == IsOrganizer.message
    member = people["member"]
    member.api_token = member.auth_token.key
    invited = client_for(member).post("/api/competitions/secret/join/")
    assert invited.status_code == 403 and invited.json()["detail"] == MayJoin.message
    from django.test import Client

    page = Client()
    page.force_login(outsider)
    assert page.get("/c/secret/").status_code == 404
    private = page.get("/c/course/", {"split": "private"}).content.decode()
    assert "The private leaderboard is revealed after the deadline; this is the public one." in (
        private)
    page.force_login(member)
    assert page.get("/c/secret/").status_code == 200
    create_competition("solo", "Solo", ["mnist"], organizers=[make_user("other", "instructor")],
                       visibility=Competition.Visibility.UNLISTED)
    assert page.get("/c/solo/").status_code == 404
