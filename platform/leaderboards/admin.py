"""The full rebuild as an admin action on competitions (beside ``manage.py rebuild_leaderboards``):
after an organizer edits a track's limits, every stored row is recomputed from the scores."""

from __future__ import annotations

from competitions.admin import CompetitionAdmin
from competitions.models import Track
from django.contrib import admin, messages
from django.db import transaction

from .ranking import rebuild_track


@admin.action(description="Rebuild the leaderboards of the selected competitions")
def rebuild_leaderboards(modeladmin, request, queryset) -> None:
    rows = 0
    for track_id in Track.objects.filter(competition__in=queryset).values_list("id", flat=True):
        with transaction.atomic():
            rows += rebuild_track(Track.objects.select_for_update().get(pk=track_id))
    modeladmin.message_user(request, f"Rebuilt: {rows} leaderboard rows written.", messages.SUCCESS)


# The action lives here, not in competitions, which never imports leaderboards.
CompetitionAdmin.actions = [*(CompetitionAdmin.actions or []), rebuild_leaderboards]
