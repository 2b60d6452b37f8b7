from django.contrib import admin

from .models import Rescore, Score, Submission


class ScoreInline(admin.StackedInline):
    model = Score
    extra = 0
    can_delete = False
    readonly_fields = [field.name for field in Score._meta.fields]


class RescoreInline(admin.TabularInline):
    model = Rescore
    extra = 0
    can_delete = False
    fields = ("hardware_class", "state", "attempts", "error", "created_at", "finished_at")
    readonly_fields = fields


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "track", "status", "is_baseline", "created_at")
    list_filter = (
        "status", "is_baseline", ("track__competition", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("user__username", "sha256", "label")
    readonly_fields = [field.name for field in Submission._meta.fields]
    inlines = [ScoreInline, RescoreInline]

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("user", "track__competition")
        if request.user.is_superuser:
            return queryset
        return queryset.filter(track__competition__organizers=request.user)
