"""Best guesses for what other tools do not say: a component's type from its name, a STRIDE category from text.

Every guess comes back with the reason, which the import report shows the user.
"""

from __future__ import annotations

import re

# Checked in order: the first keyword found in the name decides.
COMPONENT_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("feature_store", ("feature store", "feature-store", "features")),
    ("model_registry", ("registry", "mlflow")),
    ("training_pipeline", ("training", "train", "fine-tun", "finetun", "retrain")),
    ("ingestion_pipeline", ("ingest", "etl", "pipeline", "stream", "kafka", "preprocess", "label")),
    ("third_party_asset", ("third-party", "third party", "hugging", "pretrained", "pre-trained", "vendor", "external")),
    ("human_reviewer", ("reviewer", "analyst", "moderator", "annotator", "operator", "auditor")),
    ("model_artifact", ("model file", "weights", "artifact", "checkpoint", "model")),
    ("serving_api", ("api", "endpoint", "serving", "inference", "predict", "gateway", "service", "server")),
    ("data_source", ("dataset", "data set", "database", "bucket", "s3", "lake", "warehouse", "store", "data", " db")),
    ("client", ("user", "client", "browser", "customer", "app", "mobile", "partner")),
)

STRIDE_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("spoofing", ("spoof", "impersonat", "authenticat", "identity")),
    ("tampering", ("tamper", "integrity", "poison", "manipulat", "modif", "injection")),
    ("repudiation", ("repudiat", "non-repudiation", "audit", "log")),
    ("information_disclosure", ("disclos", "confidential", "leak", "exposure", "privacy", "extraction", "inference")),
    ("denial_of_service", ("denial", "dos", "availability", "exhaust", "flood")),
    ("elevation_of_privilege", ("elevation", "privilege", "authoriz", "authoris", "escalat")),
)


def _find(text: str, table: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[str, str] | None:
    lowered = f" {text.lower()} "
    for value, keywords in table:
        for keyword in keywords:
            if re.search(rf"(?<![a-z]){re.escape(keyword.strip())}", lowered):
                return value, keyword.strip()
    return None


def guess_component_type(name: str, default: str, *, allowed: tuple[str, ...] | None = None) -> tuple[str, str]:
    """The component type a name suggests (among ``allowed``), else ``default``; with the reason."""
    table = COMPONENT_KEYWORDS if allowed is None else tuple(row for row in COMPONENT_KEYWORDS if row[0] in allowed)
    found = _find(name, table)
    if found is None:
        return default, f"no keyword in the name '{name.strip()}'; used the default '{default}'"
    return found[0], f"the name '{name.strip()}' mentions '{found[1]}'"


def guess_stride(text: str) -> tuple[str, str]:
    """The STRIDE category a text suggests, else tampering; with the reason."""
    found = _find(text, STRIDE_KEYWORDS)
    if found is None:
        return "tampering", f"no STRIDE category recognised in '{text.strip()}'; used 'tampering'"
    return found[0], f"'{text.strip()}' mentions '{found[1]}'"
