"""Pages for signing in and for team administration."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from garrison.accounts import selectors, services
from garrison.accounts.forms import MemberAddForm, MemberRoleForm, TokenCreateForm
from garrison.accounts.roles import Capability
from garrison.core.forms import add_service_errors


class LoginView(auth_views.LoginView):
    """Sign in; django-axes locks a user name and address out after repeated failures."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """Sign out (POST only)."""


@login_required
def team_list(request: HttpRequest) -> HttpResponse:
    """The teams the user belongs to."""
    roles = selectors.team_roles(request.user)
    teams = [{"team": team, "role": roles[team.id]} for team in selectors.team_list(user=request.user)]
    return render(request, "accounts/team_list.html", {"teams": teams})


def _team_context(request: HttpRequest, team: str, **forms) -> dict:
    team_obj = selectors.team_get(user=request.user, slug=team)
    is_admin = Capability.ADMIN in selectors.capabilities_in(request.user, team_obj.id)
    return {
        "team": team_obj,
        "role": selectors.team_roles(request.user)[team_obj.id],
        "is_admin": is_admin,
        "members": selectors.membership_list(user=request.user, team=team_obj),
        "tokens": selectors.api_token_list(user=request.user, team=team_obj) if is_admin else [],
        "member_form": MemberAddForm(),
        "token_form": TokenCreateForm(),
        "role_form": MemberRoleForm(),
        **forms,
    }


@login_required
def team_detail(request: HttpRequest, team: str) -> HttpResponse:
    """A team's members and, for its admins, member and token management."""
    context = _team_context(request, team, new_token=request.session.pop("new_token", None))
    return render(request, "accounts/team_detail.html", context)


def _rerender(request: HttpRequest, team: str, **forms) -> HttpResponse:
    """Show the team page again with a form that has errors."""
    return render(request, "accounts/team_detail.html", _team_context(request, team, **forms), status=400)


@login_required
@require_POST
def member_add(request: HttpRequest, team: str) -> HttpResponse:
    """Add a member."""
    team_obj = selectors.team_get(user=request.user, slug=team)
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            services.membership_add(actor=request.user, team=team_obj, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Added {form.cleaned_data['username']} as {form.cleaned_data['role']}.")
            return redirect("accounts:team-detail", team=team)
    return _rerender(request, team, member_form=form)


@login_required
@require_POST
def member_change_role(request: HttpRequest, team: str, id: int) -> HttpResponse:  # noqa: A002
    """Change a member's role."""
    team_obj = selectors.team_get(user=request.user, slug=team)
    membership = selectors.membership_get(user=request.user, team=team_obj, id=id)
    form = MemberRoleForm(request.POST)
    if form.is_valid():
        try:
            services.membership_change_role(actor=request.user, membership=membership, role=form.cleaned_data["role"])
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, f"{membership.user.username} is now {form.cleaned_data['role']}.")
    else:
        messages.error(request, "Choose a valid role.")
    return redirect("accounts:team-detail", team=team)


@login_required
@require_POST
def member_remove(request: HttpRequest, team: str, id: int) -> HttpResponse:  # noqa: A002
    """Remove a member."""
    team_obj = selectors.team_get(user=request.user, slug=team)
    membership = selectors.membership_get(user=request.user, team=team_obj, id=id)
    try:
        services.membership_remove(actor=request.user, membership=membership)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Removed {membership.user.username} from the team.")
    return redirect("accounts:team-detail", team=team)


@login_required
@require_POST
def token_create(request: HttpRequest, team: str) -> HttpResponse:
    """Create an API token and show its secret once."""
    team_obj = selectors.team_get(user=request.user, slug=team, capability=Capability.ADMIN)
    form = TokenCreateForm(request.POST)
    if form.is_valid():
        try:
            token, secret = services.api_token_create(actor=request.user, team=team_obj, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            # Shown on the next page only: the session copy is popped when displayed.
            request.session["new_token"] = {"name": token.name, "secret": secret}
            return redirect("accounts:team-detail", team=team)
    return _rerender(request, team, token_form=form)


@login_required
@require_POST
def token_revoke(request: HttpRequest, team: str, id: int) -> HttpResponse:  # noqa: A002
    """Revoke an API token."""
    team_obj = selectors.team_get(user=request.user, slug=team)
    token = selectors.api_token_get(user=request.user, team=team_obj, id=id)
    try:
        services.api_token_revoke(actor=request.user, token=token)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Revoked token '{token.name}'.")
    return redirect("accounts:team-detail", team=team)
