"""API routes for accounts."""

from __future__ import annotations

from django.urls import path

from garrison.accounts.api import views

urlpatterns = [
    path("me/", views.MeView.as_view(), name="me"),
    path("teams/", views.TeamListView.as_view(), name="team-list"),
    path("teams/<slug:team>/members/", views.MembershipListView.as_view(), name="membership-list"),
    path("teams/<slug:team>/members/<int:id>/", views.MembershipDetailView.as_view(), name="membership-detail"),
    path("teams/<slug:team>/tokens/", views.ApiTokenListView.as_view(), name="token-list"),
    path("teams/<slug:team>/tokens/<int:id>/revoke/", views.ApiTokenRevokeView.as_view(), name="token-revoke"),
]
