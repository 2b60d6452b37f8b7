"""Teams of a competition (issue 12): students who rank as one participant and share a quota.

A team exists only while it has members; a student is in at most one team per competition (the
unique constraint on ``Membership``). An invitation is pending while its row exists: accepting
turns it into a membership, declining deletes it.
"""

from __future__ import annotations

from competitions.models import Competition
from django.conf import settings
from django.db import models

from .querysets import InvitationQuerySet, TeamQuerySet

TEAM_NAME_MAX = 60


class Team(models.Model):
    competition = models.ForeignKey(Competition, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=TEAM_NAME_MAX)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    objects = TeamQuerySet.as_manager()

    class Meta:
        ordering = ["competition", "name"]
        constraints = [
            models.UniqueConstraint(models.functions.Lower("name"), "competition",
                                    name="unique_team_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.competition.slug})"


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    # The team's competition again, so that the database itself keeps a student in one team.
    competition = models.ForeignKey(Competition, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="team_memberships")
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["joined_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["competition", "user"], name="one_team_per_student"),
        ]

    def save(self, *args, **kwargs):
        if self.competition_id is None:  # e.g. added in the admin's inline
            self.competition_id = self.team.competition_id
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"{self.user} in {self.team.name}"


class Invitation(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="team_invitations")
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="one_invitation_per_student"),
        ]

    def __str__(self) -> str:
        return f"{self.user} invited to {self.team.name}"
