"""Teams (issue 12, item 7): the rules as plain functions, the services on the real database
(PostgreSQL under CI), and what a team changes: one leaderboard row per board (the best of its
members' submissions, named by the team and the member), one shared quota, the team's N final
picks, each member's grade row, the API and the student's page."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from competitions.models import Track
from competitions.services import join
from coursework import services as coursework
from django.test import Client
from django.utils import timezone
from leaderboards.models import LeaderboardEntry
from leaderboards.ranking import rebuild_track
from leaderboards.rules import Candidate, best_per_participant
from teams import rules, services
from teams.models import Invitation, Membership, Team
from teams.participants import participant, team_labels

from submissions import lifecycle, quotas
from submissions.quotas import QuotaExceeded
from submissions.services import submit
from tests.evaluator.model_zoo import GOOD_MODELS
from tests.platform.helpers import client_for, distinct, scorecard

pytestmark = pytest.mark.django_db
UPLOADS = itertools.count(5000)
NOW = timezone.now()


# --- the rules on plain data ------------------------------------------------------------------

def test_the_open_rule():
    later = NOW + timedelta(days=1)
    rules.check_open(teams_enabled=True, now=NOW, deadline=later)
    with pytest.raises(rules.NotAllowed, match="no teams"):
        rules.check_open(teams_enabled=False, now=NOW, deadline=later)
    with pytest.raises(rules.NotAllowed, match="deadline has passed"):
        rules.check_open(teams_enabled=True, now=later, deadline=later)


def test_membership_freezes_at_the_first_score():
    rules.check_not_frozen()
    with pytest.raises(rules.NotAllowed, match="team already has a scored"):
        rules.check_not_frozen(team_has_scored=True)
    with pytest.raises(rules.NotAllowed, match="scored submission on your own"):
        rules.check_not_frozen(student_has_scored=True)


def test_pending_invitations_hold_a_seat():
    assert rules.seats_left(limit=3, members=1, pending=1) == 1
    assert rules.seats_left(limit=3, members=2, pending=3) == 0
    rules.check_invite(limit=3, members=1, pending=1)
    with pytest.raises(rules.NotAllowed, match="team is full"):
        rules.check_invite(limit=3, members=2, pending=1)
    rules.check_accept(limit=3, members=2)
    with pytest.raises(rules.NotAllowed, match="already full"):
        rules.check_accept(limit=3, members=3)


def test_names_and_the_organizers_size_limit():
    assert rules.clean_name("  The   Pruners ") == "The Pruners"
    with pytest.raises(rules.NotAllowed, match="name"):
        rules.clean_name("   ")
    with pytest.raises(rules.NotAllowed, match="at most 60"):
        rules.clean_name("x" * 61)
    rules.check_size_limit(2)
    for bad in (None, 1, 0, 21):
        with pytest.raises(ValueError, match="between 2 and 20"):
            rules.check_size_limit(bad)


def _c(sid: int, who: str, accuracy: float, team: int | None = None) -> Candidate:
    return Candidate(submission_id=sid, participant=who, submitted_at=NOW, accuracy=accuracy,
                     latency_ms=1.0, size_bytes=1000, team_id=team)


def test_the_ranking_takes_a_team_as_one_participant():
    from competitions.limits import Limits

    limits = Limits(max_size_bytes=10**7, max_latency_ms=100.0, accuracy_floor=0.0)
    rows = best_per_participant([_c(1, "ann", 0.90, team=7), _c(2, "bob", 0.95, team=7),
                                 _c(3, "cid", 0.93), _c(4, "dan", 0.91)], "accuracy", limits)
    # The team's best (bob's) is its one row; students on their own keep theirs.
    assert [c.submission_id for c in rows] == [2, 3, 4]


# --- the services on the database -------------------------------------------------------------

@pytest.fixture
def course(competition):
    competition.teams_enabled = True
    competition.team_size_limit = 3
    competition.save()
    return competition


@pytest.fixture
def students(course, make_user):
    people = {name: make_user(name) for name in ("ann", "bob", "cid", "dan", "eve")}
    for name, user in people.items():
        if name != "eve":  # eve is not enrolled
            join(course, user)
    return people


def upload(track, user, **card):
    """A submission through the real upload service, scored with ``card`` (no worker)."""
    submission = submit(track, user, [distinct(GOOD_MODELS["mnist_linear"](), next(UPLOADS))],
                        label=f"m{next(UPLOADS)}.onnx")
    token = lifecycle.claim(submission.pk)
    lifecycle.record_scorecard(submission.pk, token, scorecard(**card))
    submission.refresh_from_db()
    return submission


def team_of(course, *names, people) -> Team:
    """A team of ``names`` (the first makes it and invites the others, who accept)."""
    first, *others = (people[n] for n in names)
    team = services.create_team(course, first, "-".join(names))
    for other in others:
        services.accept(services.invite(team, first, other.username), other)
    return team


def test_create_invite_accept_decline_leave(course, students):
    ann, bob, cid, dan = (students[n] for n in ("ann", "bob", "cid", "dan"))
    team = services.create_team(course, ann, "Pruners")
    invitation = services.invite(team, ann, "bob")
    services.invite(team, ann, "cid")
    assert services.accept(invitation, bob) == team
    # The invitee's other invitations go once they are in a team.
    other = services.create_team(course, dan, "Quantizers")
    services.invite(other, dan, "cid")
    services.decline(Invitation.objects.get(team=other, user=cid), cid)
    assert not Invitation.objects.filter(team=other).exists()
    services.accept(Invitation.objects.get(team=team, user=cid), cid)
    assert sorted(team.memberships.values_list("user__username", flat=True)) == [
        "ann", "bob", "cid"]
    services.leave(team, cid)
    services.leave(other, dan)  # the last member: the team goes
    assert not Team.objects.filter(pk=other.pk).exists()
    assert participant(course.pk, ann.pk).user_ids == tuple(sorted((ann.pk, bob.pk)))


def test_one_team_per_student_and_only_enrolled_invitees(course, students):
    ann, bob, cid = students["ann"], students["bob"], students["cid"]
    team = services.create_team(course, ann, "Pruners")
    with pytest.raises(services.NotAllowed, match="already in a team"):
        services.create_team(course, ann, "Again")
    with pytest.raises(services.NotAllowed, match="No student called 'eve'"):
        services.invite(team, ann, "eve")  # exists, but not enrolled
    with pytest.raises(services.NotAllowed, match="No student called 'nobody'"):
        services.invite(team, ann, "nobody")
    with pytest.raises(services.NotAllowed, match="already taken|already a team"):
        services.create_team(course, bob, "pruners")  # names are case-blind
    services.create_team(course, bob, "Others")
    with pytest.raises(services.NotAllowed, match="already in another team"):
        services.invite(team, ann, "bob")
    with pytest.raises(services.NotAllowed, match="Only the team's members"):
        services.invite(team, cid, "dan")
    invitation = services.invite(team, ann, "cid")
    with pytest.raises(services.NotAllowed, match="already invited"):
        services.invite(team, ann, "cid")
    with pytest.raises(services.NotAllowed, match="not yours"):
        services.accept(invitation, bob)
    # The database keeps it too: one membership per student and competition.
    assert Membership.objects.filter(competition=course, user=ann).count() == 1


def test_the_size_limit_counts_pending_invitations(course, students):
    course.team_size_limit = 2
    course.save()
    ann, bob, cid = students["ann"], students["bob"], students["cid"]
    team = services.create_team(course, ann, "Pair")
    invitation = services.invite(team, ann, "bob")
    with pytest.raises(services.NotAllowed, match="team is full"):
        services.invite(team, ann, "cid")  # bob's pending invitation holds the second seat
    services.cancel(invitation, ann)
    late = services.invite(team, ann, "cid")
    # The organizer lowers nothing here, but a team filled meanwhile refuses the acceptance.
    Invitation.objects.create(team=team, user=bob, invited_by=ann)
    services.accept(Invitation.objects.get(team=team, user=bob), bob)
    with pytest.raises(services.NotAllowed, match="already full"):
        services.accept(late, cid)


def test_membership_is_frozen_after_the_first_score_and_the_deadline(course, students):
    ann, bob, cid, dan = (students[n] for n in ("ann", "bob", "cid", "dan"))
    track = course.tracks.get(slug="mnist")
    team = services.create_team(course, ann, "Pruners")
    invitation = services.invite(team, ann, "bob")
    upload(track, ann, accuracy=0.9)
    with pytest.raises(services.NotAllowed, match="team already has a scored"):
        services.accept(invitation, bob)
    with pytest.raises(services.NotAllowed, match="team already has a scored"):
        services.leave(team, ann)
    with pytest.raises(services.NotAllowed, match="team already has a scored"):
        services.invite(team, ann, "cid")
    upload(track, cid, accuracy=0.8)  # cid scored on their own: cannot join any team
    other = services.create_team(course, dan, "Late")
    with pytest.raises(services.NotAllowed, match="on your own"):
        services.accept(services.invite(other, dan, "cid"), cid)
    with pytest.raises(services.NotAllowed, match="on your own"):
        services.create_team(course, cid, "Mine")
    course.deadline = timezone.now() - timedelta(seconds=1)
    course.save()
    with pytest.raises(services.NotAllowed, match="deadline has passed"):
        services.leave(other, dan)


def test_teams_are_off_by_default(competition, make_user):
    ann = make_user("ann")
    join(competition, ann)
    assert competition.teams_enabled is False
    with pytest.raises(services.NotAllowed, match="no teams"):
        services.create_team(competition, ann, "Pruners")


# --- what a team changes ----------------------------------------------------------------------

def rows(track, split="public", category="accuracy"):
    return list(LeaderboardEntry.objects.filter(
        track=track, split=split, category=category, is_baseline=False).order_by("position")
        .values_list("team_name", "username", "submission_id"))


def test_a_team_has_one_row_per_board_the_best_of_its_members(course, students):
    ann, bob, cid = students["ann"], students["bob"], students["cid"]
    track = course.tracks.get(slug="mnist")
    team_of(course, "ann", "bob", people=students)
    a = upload(track, ann, accuracy=0.91, size_bytes=20_000)
    c = upload(track, cid, accuracy=0.93)
    b = upload(track, bob, accuracy=0.95, size_bytes=50_000)
    assert rows(track) == [("ann-bob", "bob", b.pk), ("", "cid", c.pk)]
    # Each board takes the team's best for its own metric: ann's model is the smaller one.
    assert rows(track, category="size")[0] == ("ann-bob", "ann", a.pk)
    for category in ("accuracy", "speed", "size", "efficiency"):
        for split in ("public", "private"):
            names = [team for team, _, _ in rows(track, split, category)]
            assert names.count("ann-bob") == 1, (split, category)
    # The incremental writes above equal a full rebuild of the track.
    before = list(LeaderboardEntry.objects.filter(track=track).order_by(
        "split", "category", "position").values_list("submission_id", "rank", "team_id"))
    rebuild_track(Track.objects.get(pk=track.pk))
    assert before == list(LeaderboardEntry.objects.filter(track=track).order_by(
        "split", "category", "position").values_list("submission_id", "rank", "team_id"))
    # The API's board and the page say the team and the member.
    api = client_for(cid).get("/api/competitions/course/leaderboard/?track=mnist").json()
    assert [(r["team_name"], r["username"]) for r in api["rows"]] == [
        ("ann-bob", "bob"), ("", "cid")]
    page = Client().get("/c/course/?track=mnist").content.decode()
    assert 'data-team="ann-bob"' in page and "team · bob" in page
    # ann's own page ranks her through the team's row (bob's submission).
    client = Client()
    client.force_login(ann)
    mine = client.get("/c/course/me/").content.decode()
    assert "#1 of 2" in mine and "ann-bob" in mine


def test_a_team_shares_the_quota(course, students):
    ann, bob, cid = students["ann"], students["bob"], students["cid"]
    track = course.tracks.get(slug="mnist")  # 3 a day (the fixture)
    team_of(course, "ann", "bob", people=students)
    upload(track, ann, accuracy=0.9)
    upload(track, bob, accuracy=0.9)
    upload(track, ann, accuracy=0.9)
    used = quotas.usage(track, bob)
    assert (used.last_24h, used.total, used.team) == (3, 3, True)
    with pytest.raises(QuotaExceeded, match="Your team has used its 3 submissions"):
        upload(track, bob, accuracy=0.9)
    upload(track, cid, accuracy=0.9)  # on her own: her own quota
    assert quotas.usage(track, cid).last_24h == 1
    # An extension's extra uploads are the student's own, on top of the team's count.
    coursework.grant_extension(course, bob, deadline=None, extra_uploads=1)
    upload(track, bob, accuracy=0.9)
    with pytest.raises(QuotaExceeded):
        upload(track, ann, accuracy=0.9)


def test_the_team_has_n_final_picks_and_the_private_board_ranks_their_best(course, students):
    ann, bob = students["ann"], students["bob"]
    track = course.tracks.get(slug="mnist")
    team_of(course, "ann", "bob", people=students)
    a1 = upload(track, ann, accuracy=0.95, private_accuracy=0.80)
    b1 = upload(track, bob, accuracy=0.90, private_accuracy=0.97)
    a2 = upload(track, ann, accuracy=0.91, private_accuracy=0.90)
    # No picks: the team's best public submission is its private row.
    assert rows(track, "private") == [("ann-bob", "ann", a1.pk)]
    coursework.set_final(a2, ann, True)
    coursework.set_final(b1, bob, True)
    assert rows(track, "private") == [("ann-bob", "bob", b1.pk)]
    with pytest.raises(coursework.NotAllowed, match=r"Your team \(ann-bob\) may mark at most 2"):
        coursework.set_final(a1, ann, True)  # two picks between them already


def test_each_member_gets_the_teams_grade_row(course, students, instructor):
    from results.services import grade_table

    bob, cid = students["bob"], students["cid"]
    track = course.tracks.get(slug="mnist")
    team_of(course, "ann", "bob", people=students)
    upload(track, bob, accuracy=0.95)
    upload(track, cid, accuracy=0.93)
    course.deadline = timezone.now() - timedelta(seconds=1)
    course.save()
    header, table = grade_table(course, ["best_accuracy", "accuracy_rank"])
    by_login = {row[1]: row for row in table}
    column = header.index("mnist accuracy rank")
    assert by_login["ann"][column] == by_login["bob"][column] == 1
    assert by_login["cid"][column] == 2 and by_login["dan"][column] == ""
    assert by_login["ann"][header.index("mnist best accuracy (private)")] == 0.95


def test_the_submission_api_names_the_team(course, students):
    ann, cid = students["ann"], students["cid"]
    track = course.tracks.get(slug="mnist")
    team_of(course, "ann", "bob", people=students)
    mine = upload(track, ann, accuracy=0.9)
    solo = upload(track, cid, accuracy=0.9)
    assert client_for(ann).get(f"/api/submissions/{mine.pk}/").json()["team"] == "ann-bob"
    assert client_for(cid).get(f"/api/submissions/{solo.pk}/").json()["team"] is None


def test_turning_teams_off_ranks_each_student_again(course, students, instructor):
    ann, bob = students["ann"], students["bob"]
    track = course.tracks.get(slug="mnist")
    team_of(course, "ann", "bob", people=students)
    upload(track, ann, accuracy=0.91)
    upload(track, bob, accuracy=0.95)
    assert len(rows(track)) == 1 and team_labels(course.pk)
    client = Client()
    client.force_login(instructor)
    form = {"c-slug": course.slug, "c-title": course.title, "c-description": "",
            "c-start": course.start.strftime("%Y-%m-%dT%H:%M"),
            "c-deadline": course.deadline.strftime("%Y-%m-%dT%H:%M"), "c-visibility": "public",
            "c-reveal_private_after_deadline": "on", "c-team_size_limit": "3",
            "p-final_picks": "2"}
    assert client.post("/c/course/organize/", form).status_code == 302
    assert [(team, who) for team, who, _ in rows(track)] == [("", "bob"), ("", "ann")]
    assert team_labels(course.pk) == {}


def test_the_organizer_form_checks_the_size_limit(course, instructor):
    client = Client()
    client.force_login(instructor)
    form = {"c-slug": course.slug, "c-title": course.title, "c-description": "",
            "c-start": course.start.strftime("%Y-%m-%dT%H:%M"),
            "c-deadline": course.deadline.strftime("%Y-%m-%dT%H:%M"), "c-visibility": "public",
            "c-teams_enabled": "on", "c-team_size_limit": "1", "p-final_picks": "2"}
    response = client.post("/c/course/organize/", form)
    assert response.status_code == 400
    assert "between 2 and 20 students" in response.content.decode()
    form["c-team_size_limit"] = "4"
    assert client.post("/c/course/organize/", form).status_code == 302
    course.refresh_from_db()
    assert (course.teams_enabled, course.team_size_limit) == (True, 4)


def test_the_student_page_makes_and_joins_a_team(course, students):
    ann, bob, cid = students["ann"], students["bob"], students["cid"]
    as_ann, as_bob, as_cid = Client(), Client(), Client()
    as_ann.force_login(ann)
    as_bob.force_login(bob)
    as_cid.force_login(cid)
    assert "Make a team" in as_ann.get("/c/course/me/").content.decode()
    as_ann.post("/c/course/me/team/", {"action": "create", "name": "Pruners"})
    response = as_ann.post("/c/course/me/team/", {"action": "invite", "username": "eve"},
                           follow=True)
    assert "No student called &#x27;eve&#x27;" in response.content.decode()
    as_ann.post("/c/course/me/team/", {"action": "invite", "username": "bob"})
    invitation = Invitation.objects.get(user=bob)
    page = as_bob.get("/c/course/me/").content.decode()
    assert 'data-invitation="Pruners"' in page
    # Someone else's invitation is unknown to cid (404), never accepted.
    assert as_cid.post("/c/course/me/team/", {"action": "accept",
                                              "invitation": invitation.pk}).status_code == 404
    assert as_bob.post("/c/course/me/team/", {"action": "accept", "invitation": "x"}
                       ).status_code == 404
    as_bob.post("/c/course/me/team/", {"action": "accept", "invitation": invitation.pk})
    page = as_bob.get("/c/course/me/").content.decode()
    assert "data-team-name>Pruners" in page and "<strong>ann</strong>" in page
    assert as_bob.post("/c/course/me/team/", {"action": "dance"}).status_code == 404
    response = as_bob.post("/c/course/me/team/", {"action": "leave"}, follow=True)
    assert "You left team Pruners" in response.content.decode()


def test_the_page_says_nothing_of_teams_when_they_are_off(competition, make_user):
    ann = make_user("ann")
    join(competition, ann)
    client = Client()
    client.force_login(ann)
    assert "data-team" not in client.get("/c/course/me/").content.decode()
    response = client.post("/c/course/me/team/", {"action": "create", "name": "X"}, follow=True)
    assert "no teams" in response.content.decode()
