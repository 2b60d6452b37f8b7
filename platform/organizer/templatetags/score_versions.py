"""``{% score_versions_note track %}``: a note on a leaderboard whose scores come from more than
one evaluator or latency-protocol version (a re-score under way, or not run after a change)."""

from __future__ import annotations

from django import template

from submissions.rescoring import score_versions

register = template.Library()


@register.inclusion_tag("organizer/_score_versions_note.html")
def score_versions_note(track) -> dict:
    versions = score_versions(track)
    return {"versions": versions if len(versions) > 1 else {}}
