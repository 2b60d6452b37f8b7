from __future__ import annotations

import json

from django import template

register = template.Library()


@register.filter
def pretty_json(value) -> str:
    """A scorecard or report as indented JSON (the template escapes it)."""
    return json.dumps(value, indent=2, sort_keys=True, default=str)
