"""Who may see which teams and invitations, as queryset methods (the access rules live here, not
in the views). Imports no model (``models.py`` imports it for the managers)."""

from __future__ import annotations

from django.db import models


class TeamQuerySet(models.QuerySet):
    def of_member(self, user, competition) -> TeamQuerySet:
        """The team ``user`` is in, in ``competition`` (at most one row)."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(competition=competition, memberships__user=user)


class InvitationQuerySet(models.QuerySet):
    def for_invitee(self, user, competition) -> InvitationQuerySet:
        """The pending invitations addressed to ``user`` in ``competition``."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(user=user, team__competition=competition)

    def of_team_member(self, user, competition) -> InvitationQuerySet:
        """The pending invitations sent by ``user``'s team (any member may cancel one)."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(team__competition=competition, team__memberships__user=user)
