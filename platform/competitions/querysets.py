"""Which competitions a user may see, as a queryset method (Django keeps such rules on the
model's manager): ``Competition.objects.visible_to(user)``.

This module imports no model (``models.py`` imports it for the manager).
"""

from __future__ import annotations

from django.db import models


class CompetitionQuerySet(models.QuerySet):
    def visible_to(self, user) -> CompetitionQuerySet:
        """Public competitions, plus the unlisted ones ``user`` organizes or takes part in
        (all of them for a superuser). The same rule as ``Competition.can_view``."""
        public = self.filter(visibility=self.model.Visibility.PUBLIC)
        if not user.is_authenticated:
            return public
        if user.is_superuser:
            return self.all()
        mine = self.filter(organizers=user) | self.filter(participations__user=user)
        return (public | mine).distinct()

    def organized_by(self, user) -> CompetitionQuerySet:
        """The competitions ``user`` organizes (every one for a superuser)."""
        if user.is_superuser:
            return self.all()
        if not user.is_authenticated:
            return self.none()
        return self.filter(organizers=user)

