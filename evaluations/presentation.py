"""Charts and thumbnails for run pages, built from stored results with ``garrison.charts``."""

from __future__ import annotations

import json
from typing import Any

from evaluations.models import EvaluationRun, RunArtifactKind, RunKind, RunStatus
from garrison.charts import bar_chart, image_thumbnail, line_chart


def _curve(run: EvaluationRun) -> list[tuple[float, float]]:
    metrics = run.metrics or {}
    return list(zip(metrics.get("epsilons", []), metrics.get("robust_accuracy", []), strict=False))


def _samples(run: EvaluationRun) -> list[dict[str, Any]]:
    """Clean/adversarial thumbnails of 2-D single-channel inputs (e.g. 8x8 digits) at the largest budget."""
    artifact = next((a for a in run.artifacts.all() if a.kind == RunArtifactKind.FLAGGED_SAMPLES), None)
    if artifact is None:
        return []
    try:
        by_eps = json.loads(artifact.blob.path.read_bytes())
    except (OSError, ValueError):
        return []
    if not by_eps:
        return []
    eps, samples = list(by_eps.items())[-1]
    bounds = tuple(run.model_artifact.input_bounds or (0.0, 1.0))
    names = run.metrics.get("class_names") or []
    shown = []

    def label_name(label: int) -> str:
        return names[label] if label < len(names) else str(label)

    if samples and "clean_text" in samples[0]:  # token-id (text) data: before/after texts
        texts = [
            {
                "clean_text": sample["clean_text"],
                "adversarial_text": sample["adversarial_text"],
                "label": label_name(sample["label"]),
                "prediction": label_name(sample["adversarial_prediction"]),
                "fooled": sample["adversarial_prediction"] != sample["label"],
            }
            for sample in samples[:8]
        ]
        return [{"epsilon": int(float(eps)), "texts": texts}]
    for sample in samples[:8]:
        clean, adversarial = sample["clean"], sample["adversarial"]
        if isinstance(clean, list) and len(clean) == 1:  # one channel
            clean, adversarial = clean[0], adversarial[0]
        if not (isinstance(clean, list) and clean and isinstance(clean[0], list) and len(clean) <= 64):
            return []

        def name(label: int) -> str:
            return names[label] if label < len(names) else str(label)

        shown.append(
            {
                "clean": image_thumbnail(clean, bounds=bounds, label=f"clean, label {name(sample['label'])}"),
                "adversarial": image_thumbnail(
                    adversarial, bounds=bounds, label=f"adversarial, predicted {name(sample['adversarial_prediction'])}"
                ),
                "label": name(sample["label"]),
                "prediction": name(sample["adversarial_prediction"]),
                "fooled": sample["adversarial_prediction"] != sample["label"],
            }
        )
    return [{"epsilon": eps, "samples": shown}] if shown else []


def run_charts(run: EvaluationRun) -> dict[str, Any]:
    """SVG charts (strings) for a finished run's page."""
    if run.status != RunStatus.SUCCEEDED:
        return {}
    metrics = run.metrics or {}
    charts: dict[str, Any] = {}
    if run.kind == RunKind.ROBUSTNESS and metrics.get("epsilons"):
        charts["curve"] = line_chart(
            [{"label": "robust accuracy", "points": _curve(run)}],
            x_label="word edits" if metrics.get("attack") == "text" else f"epsilon ({metrics.get('norm', '')})",
            y_label="accuracy",
            y_range=(0.0, 1.0),
            title=f"Robust accuracy vs epsilon ({str(metrics.get('attack', '')).upper()})",
        )
        names = metrics.get("class_names") or []
        per_class = metrics.get("per_class_clean_accuracy") or []
        charts["per_class"] = bar_chart(
            [(names[i] if i < len(names) else str(i), value) for i, value in enumerate(per_class)],
            title="Clean accuracy per class",
            y_label="accuracy",
        )
        charts["samples"] = _samples(run)
    if run.kind == RunKind.ADVERSARIAL_TRAINING and metrics:
        charts["before_after"] = bar_chart(
            [
                ("clean before", metrics.get("clean_accuracy_before")),
                ("robust before", metrics.get("robust_accuracy_before")),
                ("clean after", metrics.get("clean_accuracy_after")),
                ("robust after", metrics.get("robust_accuracy_after")),
            ],
            title=f"Before and after adversarial training (eps {metrics.get('eps')})",
            y_label="accuracy",
        )
        history = metrics.get("history") or []
        if history:
            charts["history"] = line_chart(
                [
                    {
                        "label": "clean test accuracy",
                        "points": [(i + 1, h.get("eval_accuracy")) for i, h in enumerate(history)],
                    }
                ],
                x_label="epoch",
                y_label="accuracy",
                y_range=(0.0, 1.0),
                title="Training history",
            )
    if run.kind == RunKind.EXTRACTION and metrics.get("target") == "deployment":
        charts["defenses"], charts["defense_runs"] = deployment_comparison(run)
    if run.kind == RunKind.EXTRACTION and metrics.get("budgets"):
        charts["extraction"] = extraction_chart(metrics)
        charts["extraction_points"] = list(
            zip(
                metrics["budgets"],
                metrics.get("queries") or metrics["budgets"],
                metrics.get("fidelity") or [],
                metrics.get("surrogate_accuracy") or [],
                strict=False,
            )
        )
    if run.kind == RunKind.POISONING_DETECTION and metrics.get("classes"):
        charts["poisoning"] = class_score_chart(metrics)
    if run.kind == RunKind.BACKDOOR_SIMULATION and metrics:
        charts["backdoor"] = bar_chart(
            [
                ("ASR before", metrics.get("attack_success_rate")),
                ("clean before", metrics.get("clean_accuracy")),
                ("ASR after", metrics.get("backdoor_success_after")),
                ("clean after", metrics.get("clean_accuracy_after")),
            ],
            title=f"Backdoor before and after dropping {metrics.get('flagged', 0)} flagged samples",
            y_label="rate",
        )
        if metrics.get("classes"):
            charts["poisoning"] = class_score_chart(metrics)
    return charts


def extraction_chart(metrics: dict[str, Any]) -> str:
    """Fidelity and surrogate accuracy against the attack-query budget."""
    budgets = metrics.get("budgets") or []
    return line_chart(
        [
            {"label": "fidelity", "points": list(zip(budgets, metrics.get("fidelity") or [], strict=False))},
            {
                "label": "surrogate accuracy",
                "points": list(zip(budgets, metrics.get("surrogate_accuracy") or [], strict=False)),
            },
        ],
        x_label="attack queries",
        y_label="agreement / accuracy",
        y_range=(0.0, 1.0),
        title=f"Extraction fidelity vs budget ({metrics.get('strategy')}, defense {metrics.get('defense')})",
    )


def deployment_comparison(run: EvaluationRun, limit: int = 8) -> tuple[str, list[EvaluationRun]]:
    """Fidelity-vs-budget of the latest extraction runs against the same deployment, one line per output policy.

    Runs against one deployment under different output policies (the deployment's policy changed between
    them) compare the defenses; the chart labels each line with its run and policy.
    """
    deployment_id = (run.config or {}).get("deployment")
    runs = list(
        EvaluationRun.objects.filter(
            kind=RunKind.EXTRACTION,
            status=RunStatus.SUCCEEDED,
            system_id=run.system_id,
            config__target="deployment",
            config__deployment=deployment_id,
        )
        .select_related("model_artifact")
        .order_by("-finished_at", "-id")[:limit]
    )
    runs.reverse()
    series = [
        {
            "label": f"#{other.pk} {other.metrics.get('deployment_policy', '?')}",
            "points": list(zip(other.metrics.get("budgets") or [], other.metrics.get("fidelity") or [], strict=False)),
        }
        for other in runs
        if other.metrics.get("budgets")
    ]
    if not series:
        return "", runs
    chart = line_chart(
        series,
        x_label="attack queries over HTTP",
        y_label="fidelity",
        y_range=(0.0, 1.0),
        title=f"Output policies of {run.metrics.get('deployment', 'the deployment')} compared",
    )
    return chart, runs


def class_score_chart(metrics: dict[str, Any]) -> str:
    """Per-class outlier score: the token-trigger z (text), the spectral separation, else the clustering silhouette."""
    rows = metrics.get("classes") or []
    if any(row.get("trigger_z") is not None for row in rows):
        bars = [(f"{row['name']}{' *' if row['flagged'] else ''}", row.get("trigger_z")) for row in rows]
        top = max([value for _, value in bars if value is not None] + [1.0])
        return bar_chart(
            bars,
            title="Per-class most suspicious word or phrase (* flagged)",
            y_label="robust z of its flip rate",
            y_range=(min([0.0] + [v for _, v in bars if v is not None]), top * 1.1),
        )
    if any(row.get("trigger_transfer") is not None for row in rows):
        return bar_chart(
            [(f"{row['name']}{' *' if row['flagged'] else ''}", row.get("trigger_transfer")) for row in rows],
            title="Per-class best candidate patch trigger: share of its source class it sends here (* flagged)",
            y_label="transfer rate",
            y_range=(0.0, 1.0),
        )
    key = "separation" if any(row.get("separation") is not None for row in rows) else "silhouette"
    bars = [(f"{row['name']}{' *' if row['flagged'] else ''}", row.get(key)) for row in rows]
    top = max([value for _, value in bars if value is not None] + [1.0])
    return bar_chart(
        bars,
        title="Per-class " + ("spectral separation" if key == "separation" else "cluster silhouette") + " (* flagged)",
        y_label="robust SDs" if key == "separation" else "silhouette",
        y_range=(0.0, top * 1.1) if key == "separation" else (0.0, 1.0),
    )


def comparison_chart(runs: list[EvaluationRun]) -> str:
    """Robustness curves of several runs on one chart."""
    series = [
        {"label": f"run #{run.pk} (model v{run.model_artifact.version})", "points": _curve(run)}
        for run in runs
        if run.kind == RunKind.ROBUSTNESS and run.status == RunStatus.SUCCEEDED
    ]
    if not series:
        return ""
    return line_chart(series, x_label="epsilon", y_label="robust accuracy", y_range=(0.0, 1.0), title="Comparison")
