"""Django admin for competitions, their tracks and participations.

A superuser sees everything. An instructor (staff, not superuser) sees and edits only the
competitions they organize: the lists, the change pages (another competition's is "not found"),
the competition choices of every form and the list filters. So an instructor cannot add himself
to another competition, unlisted or not, and read it through the API.
"""

from __future__ import annotations

from django.contrib import admin

from .models import Competition, Participation, Track


class TrackInline(admin.TabularInline):
    model = Track
    extra = 0


@admin.register(Competition)
class CompetitionAdmin(admin.ModelAdmin):
    list_display = ("slug", "title", "visibility", "start", "deadline")
    prepopulated_fields = {"slug": ("title",)}
    filter_horizontal = ("organizers",)
    inlines = [TrackInline]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(
            pk__in=Competition.objects.organized_by(request.user).values("pk"))

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # An instructor who makes (or edits) a competition stays among its organizers: otherwise
        # it would vanish from his own lists the moment he saved it.
        if not request.user.is_superuser:
            form.instance.organizers.add(request.user)


@admin.register(Participation)
class ParticipationAdmin(admin.ModelAdmin):
    list_display = ("user", "competition", "joined_at")
    # Only competitions among the rows the user may see (the default lists every name).
    list_filter = (("competition", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("user__username",)

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("user", "competition")
        if request.user.is_superuser:
            return queryset
        return queryset.filter(competition__organizers=request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "competition":
            kwargs["queryset"] = Competition.objects.organized_by(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
