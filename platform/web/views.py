"""Server-rendered pages (a skeleton: the public pages are built on top of the leaderboard service)."""

from competitions.models import Competition
from django.shortcuts import render


def home(request):
    competitions = Competition.objects.filter(visibility=Competition.Visibility.PUBLIC)
    return render(request, "web/home.html", {"competitions": competitions})
