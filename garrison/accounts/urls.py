"""Routes for sign-in and team pages."""

from __future__ import annotations

from django.urls import path

from garrison.accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("teams/", views.team_list, name="team-list"),
    path("teams/<slug:team>/", views.team_detail, name="team-detail"),
    path("teams/<slug:team>/members/add/", views.member_add, name="member-add"),
    path("teams/<slug:team>/members/<int:id>/role/", views.member_change_role, name="member-role"),
    path("teams/<slug:team>/members/<int:id>/remove/", views.member_remove, name="member-remove"),
    path("teams/<slug:team>/tokens/create/", views.token_create, name="token-create"),
    path("teams/<slug:team>/tokens/<int:id>/revoke/", views.token_revoke, name="token-revoke"),
]
