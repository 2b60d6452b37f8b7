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
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(organizers=request.user)


@admin.register(Participation)
class ParticipationAdmin(admin.ModelAdmin):
    list_display = ("user", "competition", "joined_at")
    list_filter = ("competition",)
    search_fields = ("user__username",)
