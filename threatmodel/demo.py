"""Demo data for the threatmodel app: the demo ML systems."""

from __future__ import annotations

from typing import Any

from garrison.accounts.models import Team
from threatmodel.models import System
from threatmodel.services import system_create

DEMO_SYSTEMS: list[dict[str, Any]] = [
    {
        "name": "SMS spam filter",
        "slug": "sms-spam-filter",
        "description": (
            "Classifies incoming SMS messages as spam or ham for a mobile carrier. Trained on the SMS Spam "
            "Collection plus customer-reported messages, retrained weekly, served behind a REST API to the "
            "messaging gateway."
        ),
        "lifecycle_stage": "production",
        "criticality_tier": 2,
        "data_classification": "confidential",
        "deployment_endpoint": "https://ml.example.internal/spam-filter/v1/predict",
        "tags": ["nlp", "customer-facing", "spam"],
    },
    {
        "name": "Digits classifier",
        "slug": "digits-classifier",
        "description": (
            "Reads handwritten digits from scanned forms (8x8 grey-scale crops) for the back-office "
            "digitisation pipeline. A small CNN trained on the scikit-learn digits data."
        ),
        "lifecycle_stage": "staging",
        "criticality_tier": 3,
        "data_classification": "internal",
        "deployment_endpoint": "",
        "tags": ["vision", "internal"],
    },
]


def seed_systems(*, actor: Any, team: Team) -> list[System]:
    """Register the demo systems once; existing ones are left as they are."""
    systems = []
    for spec in DEMO_SYSTEMS:
        system = System.objects.filter(team=team, slug=spec["slug"]).first()
        if system is None:
            system = system_create(actor=actor, team=team, **spec)
        systems.append(system)
    return systems
