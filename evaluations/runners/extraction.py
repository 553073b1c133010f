"""The ``extraction`` kind: steal the run's model through its predictions and measure how well it worked.

The victim is the run's model in this process (:class:`LocalVictim`) behind the chosen output defense.
The attacker's natural pool (``pool``, ``active`` and the Jacobian seed set) is the dataset's train split;
fidelity is measured on its test split. With the detector on, the attack traffic goes through a
:class:`MonitoredVictim` (evaluation queries do not), and benign clients are simulated as streams of
test-split inputs, so the run reports both queries-to-detection and the benign false-positive rate.
"""

from __future__ import annotations

import json
import time
from typing import Any

from evaluations.runners.base import (
    ProducedFile,
    RunContext,
    RunOutcome,
    _device,
    _head,
    load_classifier,
    load_dataset_split,
)

REFERENCE_BUDGET = 1000
"""``fidelity_at_reference_budget`` reads the curve at the largest budget up to this many queries."""


def _strategy(config: dict[str, Any]) -> Any:
    from evaluations.engine.extraction import ActiveLearning, JacobianAugmentation, NaturalPool, RandomQueries

    name = config["strategy"]
    if name == "random":
        return RandomQueries()
    if name == "pool":
        return NaturalPool()
    if name == "jacobian":
        return JacobianAugmentation(step=config["jacobian_step"], seed_size=config["jacobian_seed_size"])
    first = config["budgets"][0]
    return ActiveLearning(initial=min(first, config["active_initial"]), step=config["active_step"])


def _defense(config: dict[str, Any]) -> Any:
    from evaluations.engine.extraction import GaussianNoise, LabelOnly, ReverseSigmoid, Rounding, TopK

    name = config["defense"]
    if name == "label_only":
        return LabelOnly()
    if name == "top_k":
        return TopK(k=config["top_k"])
    if name == "rounding":
        return Rounding(decimals=config["decimals"])
    if name == "reverse_sigmoid":
        return ReverseSigmoid(beta=config["beta"], gamma=config["gamma"])
    if name == "gaussian_noise":
        return GaussianNoise(std=config["noise_std"], seed=config["seed"])
    return None


def _surrogate(name: str, classifier: Any) -> tuple[str, dict[str, Any]]:
    """The surrogate architecture and the hyperparameters the victim's shapes do not give."""
    from evaluations.engine.common import EngineInputError

    tokens = not classifier.input_dtype.is_floating_point
    if name == "auto":
        name = "text_embeddingbag" if tokens else "mlp"
    if tokens != (name == "text_embeddingbag"):
        raise EngineInputError(
            f"A {name} surrogate cannot learn a model that takes {'token ids' if tokens else 'float inputs'}; "
            f"use surrogate 'auto' or '{'text_embeddingbag' if tokens else 'mlp'}'."
        )
    if tokens:
        return name, {"vocab_size": int(classifier.bounds[1]) + 1}
    return name, {}


def reference_point(budgets: list[int], values: list[float]) -> tuple[int | None, float | None]:
    """The budget and value at the largest budget <= ``REFERENCE_BUDGET``, else at the largest budget."""
    if not budgets:
        return None, None
    within = [i for i, budget in enumerate(budgets) if budget <= REFERENCE_BUDGET]
    index = within[-1] if within else len(budgets) - 1
    return budgets[index], values[index]


def _benign_streams(ctx: RunContext, probs: Any, x: Any, length: int) -> list[Any]:
    """``benign_streams`` clients, each querying ``length`` distinct test inputs in a seeded random order."""
    import numpy as np

    from evaluations.engine.extraction.detection import QueryStream

    streams = []
    for index in range(ctx.config["benign_streams"]):
        rng = np.random.default_rng([ctx.config["seed"], 0xBE9, index])
        order = rng.choice(x.shape[0], size=length, replace=False)
        streams.append(QueryStream(x=x[order], probs=probs[order]))
    return streams


def run_extraction(ctx: RunContext) -> RunOutcome:
    """Extract a surrogate up to each budget, then measure defense utility, transfer and detection."""
    import numpy as np
    import torch

    from evaluations.engine.common import check_cancelled, library_versions
    from evaluations.engine.extraction import ExtractionConfig, LocalVictim, defense_utility, extract
    from evaluations.engine.extraction.detection import (
        DetectorConfig,
        ExtractionDetector,
        MonitoredVictim,
        evaluate_detector,
    )

    started = time.perf_counter()
    config = ctx.config
    assert ctx.dataset is not None
    ctx.progress(0.0, "loading model and data")
    classifier = load_classifier(ctx.model, device=_device(config))
    train, test = load_dataset_split(ctx.dataset, bounds=ctx.model.bounds, class_names=ctx.model.class_names)
    pool_data = _head(train, config["max_pool_samples"])
    eval_data = _head(test, config["max_eval_samples"])
    x_eval, y_eval = torch.tensor(eval_data.x), torch.tensor(eval_data.y)
    strategy = _strategy(config)
    pool = torch.tensor(pool_data.x) if config["strategy"] != "random" else None
    defense = _defense(config)
    surrogate, surrogate_hyperparams = _surrogate(config["surrogate"], classifier)
    engine_config = ExtractionConfig(
        budgets=tuple(config["budgets"]),
        surrogate=surrogate,
        surrogate_hyperparams=surrogate_hyperparams,
        epochs=config["surrogate_epochs"],
        min_steps=config["surrogate_min_steps"],
        transfer_attack="pgd" if config["transfer_attack"] else None,
        transfer_eps=config["transfer_eps"],
        transfer_samples=config["transfer_samples"],
    )
    if config.get("target") == "deployment":
        return _run_against_deployment(
            ctx, classifier, strategy, pool, x_eval, y_eval, engine_config, surrogate, started=started
        )
    victim = LocalVictim(classifier, defense=defense)
    oracle = LocalVictim(classifier, defense=defense)  # evaluation traffic, never seen by the detector
    detector = ExtractionDetector(DetectorConfig()) if config["detector"] else None
    attacked = MonitoredVictim(victim, detector, "attacker") if detector is not None else victim
    detecting = 0.1 if detector is not None else 0.0
    attack_share = 0.9 - detecting

    result = extract(
        attacked,
        strategy,
        x_eval,
        y_eval,
        engine_config,
        pool=pool,
        evaluation_victim=oracle,
        seed=config["seed"],
        device=_device(config),
        progress=lambda f: ctx.progress(0.02 + attack_share * f, f"extracting ({config['strategy']})"),
        should_cancel=ctx.should_cancel,
    )
    check_cancelled(ctx.should_cancel)
    ctx.progress(0.92 - detecting, "measuring the defense's utility")
    utility = defense_utility(classifier, defense or (lambda p: p), x_eval, y_eval)

    report = result.to_dict()
    budgets = [point.budget for point in result.curve]
    fidelity = [point.fidelity for point in result.curve]
    reference_budget, reference_fidelity = reference_point(budgets, fidelity)
    transfer = result.transfer
    metrics: dict[str, Any] = {
        "strategy": config["strategy"],
        "surrogate": surrogate,
        "budgets": budgets,
        "queries": [point.queries for point in result.curve],
        "fidelity": fidelity,
        "surrogate_accuracy": [point.accuracy for point in result.curve],
        "reference_budget": reference_budget,
        "fidelity_at_reference_budget": reference_fidelity,
        "queries_used": result.queries_used,
        "evaluation_queries": result.evaluation_queries,
        "victim_accuracy": result.victim_accuracy,
        "soft_labels_used": result.soft_labels_used,
        "complete": result.complete,
        "stopped_reason": result.stopped_reason,
        "n_eval": result.n_eval,
        "defense": config["defense"],
        "defense_params": utility.defense if defense is not None else {},
        "defense_accuracy": utility.accuracy,
        "defense_agreement": utility.top1_agreement,
        "undefended_accuracy": utility.undefended_accuracy,
        "defense_accuracy_drop": utility.accuracy_drop,
        "defense_l1_distortion": utility.mean_l1_distortion,
        "transfer_attack": transfer.attack if transfer else None,
        "transfer_eps": transfer.eps if transfer else None,
        "transfer_success_rate": transfer.success_rate if transfer else None,
        "surrogate_transfer_success_rate": transfer.surrogate_success_rate if transfer else None,
        "transfer_samples": transfer.n_samples if transfer else 0,
        "detector": bool(detector),
    }
    detection_report = None
    if detector is not None:
        check_cancelled(ctx.should_cancel)
        ctx.progress(0.9, "replaying benign clients through the detector")
        state = attacked.state  # type: ignore[union-attr]
        x_test = np.asarray(test.x)
        answers = LocalVictim(classifier, defense=defense).query(torch.tensor(x_test))
        probs = answers.soft_targets(classifier.num_classes)
        length = min(max(budgets or config["budgets"]), x_test.shape[0])
        detection_report = evaluate_detector(detector.config, {}, _benign_streams(ctx, probs, x_test, length))
        metrics.update(
            queries_to_detection=state.first_flagged_at if state is not None else None,
            detected_by=list(state.flagged_by) if state is not None else [],
            benign_false_positive_rate=detection_report.benign_fpr,
            benign_streams=detection_report.n_benign,
            benign_stream_length=length,
        )
        report["detection"] = {
            "attacker": None if state is None else state.to_dict(),
            "benign": detection_report.to_dict(),
        }
    ctx.progress(1.0, "done")
    report["defense_utility"] = utility.to_dict()
    reproducibility = {
        "seed": config["seed"],
        "model_sha256": ctx.model.sha256,
        "dataset_sha256": ctx.dataset.sha256,
        "eval_sha256": result.eval_sha256,
        "pool_sha256": result.pool_sha256,
        "queries_sha256": result.queries_sha256,
        "extraction_config": engine_config.to_dict(),
        "strategy": result.strategy,
        "victim": result.victim,
        "detector_config": detector.config.to_dict() if detector is not None else None,
        "benign_streams_sha256": detection_report.streams_sha256 if detection_report else None,
        "library_versions": library_versions(),
    }
    flags = []
    if not result.complete and result.stopped_reason:
        flags.append(
            {"code": "extraction_incomplete", "message": f"The attack stopped early: {result.stopped_reason}."}
        )
    return RunOutcome(
        metrics=metrics,
        flags=flags,
        reliable=None,
        reproducibility=reproducibility,
        files=[ProducedFile("report", "extraction-report.json", "application/json", json.dumps(report).encode())],
        engine_seconds=time.perf_counter() - started,
    )


def _utility_defense(policy: dict[str, Any]) -> Any:
    """The engine defense whose utility matches a deployment's output policy (labels only: one-hot)."""
    from evaluations.engine.extraction import LabelOnly, TopK
    from evaluations.serving.policies import engine_output

    if policy["name"] == "label_only":
        return LabelOnly()
    if policy["name"] == "top_k":
        return TopK(k=int(policy["k"]))
    return engine_output(policy)[2]


def _run_against_deployment(
    ctx: RunContext,
    classifier: Any,
    strategy: Any,
    pool: Any,
    x_eval: Any,
    y_eval: Any,
    engine_config: Any,
    surrogate: str,
    *,
    started: float,
) -> RunOutcome:
    """Attack a guarded deployment over real HTTP with a key of the run's own; report what its guard did."""
    from evaluations.engine.common import EngineInputError, check_cancelled, library_versions
    from evaluations.engine.extraction import LocalVictim, VictimError, defense_utility, extract
    from evaluations.serving.evaluation import MeteredHttpVictim, TargetError, deployment_target
    from evaluations.serving.policies import engine_output

    config = ctx.config
    stopped_by_guard = None
    result = None
    try:
        with deployment_target(config["deployment"], model_sha256=ctx.model.sha256) as target:
            victim = MeteredHttpVictim.create(
                target.url,
                target.secret,
                classifier=classifier,
                batch_size=config["http_batch_size"],
                max_wait=config["max_rate_limit_wait"],
            )
            output, k, defense = engine_output(target.policy)
            # Evaluation traffic (fidelity labels, transfer) stays in-process: the deployment's monitor and
            # limits see only the attacker's queries, and the labels are the ones the deployment answers.
            oracle = LocalVictim(classifier, output=output, k=k, defense=defense)  # type: ignore[arg-type]
            attack_started = time.perf_counter()
            try:
                result = extract(
                    victim,
                    strategy,
                    x_eval,
                    y_eval,
                    engine_config,
                    pool=pool,
                    evaluation_victim=oracle,
                    seed=config["seed"],
                    device=_device(config),
                    progress=lambda f: ctx.progress(0.02 + 0.88 * f, f"extracting over HTTP ({config['strategy']})"),
                    should_cancel=ctx.should_cancel,
                )
            except VictimError as exc:
                stopped_by_guard = str(exc)
            attack_seconds = time.perf_counter() - attack_started
            queries_sent = victim.queries_used
            metering = dict(victim.metering)
    except TargetError as exc:
        raise EngineInputError(str(exc)) from None
    check_cancelled(ctx.should_cancel)
    outcome = target.outcome
    policy = outcome["policy"]
    ctx.progress(0.92, "measuring the output policy's utility")
    utility_defense = _utility_defense(policy)
    utility = defense_utility(classifier, utility_defense or (lambda p: p), x_eval, y_eval)
    budgets = [point.budget for point in result.curve] if result else []
    fidelity = [point.fidelity for point in result.curve] if result else []
    reference_budget, reference_fidelity = reference_point(budgets, fidelity)
    metrics: dict[str, Any] = {
        "target": "deployment",
        "deployment_id": outcome["deployment_id"],
        "deployment": outcome["deployment"],
        "deployment_policy": policy["name"],
        "deployment_policy_params": policy,
        "strategy": config["strategy"],
        "surrogate": surrogate,
        "budgets": budgets,
        "queries": [point.queries for point in result.curve] if result else [],
        "fidelity": fidelity,
        "surrogate_accuracy": [point.accuracy for point in result.curve] if result else [],
        "reference_budget": reference_budget,
        "fidelity_at_reference_budget": reference_fidelity,
        "queries_used": result.queries_used if result else queries_sent,
        "evaluation_queries": result.evaluation_queries if result else 0,
        "victim_accuracy": result.victim_accuracy if result else None,
        "soft_labels_used": result.soft_labels_used if result else None,
        "complete": bool(result and result.complete),
        "stopped_reason": (result.stopped_reason if result else None) or stopped_by_guard,
        "n_eval": int(x_eval.shape[0]),
        "defense": policy["name"],
        "defense_params": policy,
        "defense_accuracy": utility.accuracy,
        "defense_agreement": utility.top1_agreement,
        "undefended_accuracy": utility.undefended_accuracy,
        "defense_accuracy_drop": utility.accuracy_drop,
        "defense_l1_distortion": utility.mean_l1_distortion,
        "transfer_attack": result.transfer.attack if result and result.transfer else None,
        "transfer_success_rate": result.transfer.success_rate if result and result.transfer else None,
        "detector": outcome["monitor_enabled"],
        "monitor_action": outcome["monitor_action"],
        "flagged": outcome["flagged"],
        "queries_to_detection": outcome["queries_to_detection"],
        "detected_by": outcome["detected_by"],
        "rate_limited_responses": metering["rate_limited_responses"],
        "seconds_waited": round(metering["seconds_waited"], 3),
        "blocked_after": metering["blocked_after"],
        "gave_up_waiting": metering["gave_up_waiting"],
        "attack_seconds": round(attack_seconds, 3),
        "limits": outcome["limits"],
    }
    report = result.to_dict() if result else {}
    report["deployment"] = outcome
    report["metering"] = metering
    report["defense_utility"] = utility.to_dict()
    flags = []
    if stopped_by_guard:
        message = f"The deployment's guard stopped the attack: {stopped_by_guard}"
        flags.append({"code": "stopped_by_guard", "message": message})
    elif result is not None and not result.complete and result.stopped_reason:
        message = f"The attack stopped early: {result.stopped_reason}."
        flags.append({"code": "extraction_incomplete", "message": message})
    ctx.progress(1.0, "done")
    return RunOutcome(
        metrics=metrics,
        flags=flags,
        reliable=None,
        reproducibility={
            "seed": config["seed"],
            "model_sha256": ctx.model.sha256,
            "dataset_sha256": ctx.dataset.sha256 if ctx.dataset else None,
            "eval_sha256": result.eval_sha256 if result else None,
            "queries_sha256": result.queries_sha256 if result else None,
            "extraction_config": engine_config.to_dict(),
            "victim": {"kind": "http", "endpoint": outcome["endpoint"], "key_prefix": outcome["key_prefix"]},
            "library_versions": library_versions(),
        },
        files=[ProducedFile("report", "extraction-report.json", "application/json", json.dumps(report).encode())],
        engine_seconds=time.perf_counter() - started,
    )
