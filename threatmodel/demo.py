"""Demo data for the threatmodel app: the demo ML systems."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from garrison.accounts.models import Team
from threatmodel.models import System, Threat, ThreatStatus
from threatmodel.services import (
    boundary_create,
    component_create,
    control_create,
    flow_create,
    system_create,
    threat_decide,
    threat_model_create,
    version_approve,
    version_start_draft,
    version_submit,
)

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


def _accept(actor: Any, version: Any, component: str, keys: list[str]) -> list[Threat]:
    threats = list(version.threats.filter(component__name=component, catalog_key__in=keys))
    for threat in threats:
        threat_decide(actor=actor, threat=threat, status=ThreatStatus.ACCEPTED)
    return threats


def _build_spam_filter(actor: Any, version: Any) -> None:
    """The spam filter: ingestion -> training -> model registry -> serving API -> mail clients."""
    internet = boundary_create(actor=actor, version=version, name="Internet")
    platform = boundary_create(actor=actor, version=version, name="ML platform VPC")
    parts = {}
    for name, kind, zone in [
        ("Customer spam reports", "data_source", internet),
        ("SMS ingestion pipeline", "ingestion_pipeline", platform),
        ("Training pipeline", "training_pipeline", platform),
        ("Model registry", "model_registry", platform),
        ("Spam prediction API", "serving_api", platform),
        ("Mail clients", "client", internet),
    ]:
        parts[name] = component_create(actor=actor, version=version, name=name, component_type=kind, boundary=zone)
    for source, target, data, protocol, authenticated in [
        ("Customer spam reports", "SMS ingestion pipeline", "reported SMS with labels", "HTTPS", False),
        ("SMS ingestion pipeline", "Training pipeline", "labelled training batches", "S3", True),
        ("Training pipeline", "Model registry", "model weights (safetensors)", "HTTPS", True),
        ("Model registry", "Spam prediction API", "approved model version", "HTTPS", True),
        ("Mail clients", "Spam prediction API", "SMS text to classify", "HTTPS", True),
    ]:
        flow_create(
            actor=actor,
            version=version,
            source=parts[source],
            target=parts[target],
            data=data,
            protocol=protocol,
            authenticated=authenticated,
        )
    evasion = _accept(actor, version, "Spam prediction API", ["evasion-adversarial-examples"])
    extraction = _accept(actor, version, "Spam prediction API", ["model-extraction-via-inference-api"])
    poisoning = _accept(actor, version, "SMS ingestion pipeline", ["training-data-poisoning"])
    _accept(actor, version, "Training pipeline", ["backdoor-trigger-implant"])
    _accept(actor, version, "Model registry", ["unsafe-model-file-code-execution"])
    control_create(
        actor=actor,
        version=version,
        name="Adversarial training and robustness evaluation",
        control_type="preventive",
        atlas_mitigations=["AML.M0002"],
        owner=actor,
        status="implemented",
        threats=evasion,
    )
    control_create(
        actor=actor,
        version=version,
        name="Query rate limits and extraction monitoring",
        control_type="detective",
        atlas_mitigations=["AML.M0004", "AML.M0024"],
        owner=actor,
        status="in_progress",
        due_date=date.today() + timedelta(days=30),
        threats=extraction,
    )
    control_create(
        actor=actor,
        version=version,
        name="Quarantine and poison scan of new training batches",
        control_type="preventive",
        atlas_mitigations=["AML.M0007", "AML.M0025"],
        owner=actor,
        status="verified",
        threats=poisoning,
    )


def seed_threat_models(*, author: Any, approver: Any, systems: list[System]) -> None:
    """Give the spam filter an approved v1 and a v2 in review (so the diff and review can be tried)."""
    system = next((s for s in systems if s.slug == "sms-spam-filter"), None)
    if system is None or system.threat_models.exists():
        return
    threat_model = threat_model_create(actor=author, system=system, title="SMS spam filter threat model")
    first = threat_model.versions.get()
    _build_spam_filter(author, first)
    version_submit(actor=author, version=first, summary="First model of the spam-filter pipeline.")
    version_approve(actor=approver, version=first, note="Covers the pipeline end to end.")
    second = version_start_draft(actor=author, threat_model=threat_model)
    feedback = component_create(
        actor=author, version=second, name="Human review queue", component_type="human_reviewer"
    )
    flow_create(
        actor=author,
        version=second,
        source=feedback,
        target=second.components.get(name="SMS ingestion pipeline"),
        data="relabelled messages",
        protocol="HTTPS",
    )
    version_submit(actor=author, version=second, summary="Adds the human review queue that relabels messages.")


def seed_digits_threat_model(*, author: Any, approver: Any, systems: list[System]) -> Any:
    """An approved threat model of the digits classifier with a verified adversarial-training control."""
    system = next((s for s in systems if s.slug == "digits-classifier"), None)
    if system is None or system.threat_models.exists():
        return None
    threat_model = threat_model_create(actor=author, system=system, title="Digits classifier threat model")
    version = threat_model.versions.get()
    scans = component_create(actor=author, version=version, name="Scanned forms", component_type="data_source")
    model = component_create(actor=author, version=version, name="Digits CNN", component_type="model_artifact")
    api = component_create(actor=author, version=version, name="Digitisation API", component_type="serving_api")
    flow_create(actor=author, version=version, source=scans, target=api, data="8x8 digit crops", protocol="HTTPS")
    flow_create(actor=author, version=version, source=model, target=api, data="model weights")
    evasion = _accept(author, version, "Digitisation API", ["evasion-adversarial-examples"])
    _accept(author, version, "Digits CNN", ["unsafe-model-file-code-execution"])
    control = control_create(
        actor=author,
        version=version,
        name="Adversarial training and robustness evaluation",
        control_type="preventive",
        atlas_mitigations=["AML.M0002"],
        owner=author,
        status="verified",
        threats=evasion,
    )
    version_submit(actor=author, version=version, summary="Digits classifier behind the digitisation API.")
    version_approve(actor=approver, version=version, note="Approved for staging.")
    return control
