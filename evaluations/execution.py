"""Running a claimed evaluation run in a worker: context, supervision (progress, heartbeat, cancel), results.

The Celery tasks stay thin and call into here; the management command ``run_evaluation`` uses the same
code synchronously. Nothing here imports torch at module level.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import Avg

from evaluations import runners, services
from evaluations.models import EvaluationRun, RunKind, RunShard, RunStatus

logger = logging.getLogger(__name__)


class Supervisor:
    """Throttled progress writes, throttled cancel checks and a heartbeat thread for one attempt."""

    def __init__(self, run_id: int, attempt: int, *, shard: int | None = None) -> None:
        self.run_id = run_id
        self.attempt = attempt
        self.shard = shard
        self.interval = settings.GARRISON_PROGRESS_INTERVAL_SECONDS
        self.started = time.monotonic()
        self._last_write = 0.0
        self._last_check = 0.0
        self._stop_requested = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"run-{run_id}-heartbeat", daemon=True)

    def __enter__(self) -> Supervisor:
        # Run synchronously inside a transaction (seed_demo, tests), another connection could not write.
        if not connection.in_atomic_block:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _beat(self) -> None:
        """Keep the heartbeat fresh even while one long batch runs; notice when the attempt lost the run."""
        try:
            while not self._stop.wait(settings.GARRISON_RUN_HEARTBEAT_SECONDS):
                if not services.evaluation_run_heartbeat(run_id=self.run_id, attempt=self.attempt):
                    self._stop_requested = True
        except Exception:  # noqa: BLE001 - a heartbeat failure must not kill the run; the reaper decides
            logger.exception("heartbeat of run %s failed", self.run_id)
        finally:
            connection.close()

    def progress(self, fraction: float, stage: str) -> None:
        """Record progress at most once per interval (and always at the end)."""
        now = time.monotonic()
        if now - self._last_write < self.interval and fraction < 1.0:
            return
        self._last_write = now
        elapsed = now - self.started
        eta = elapsed / fraction * (1.0 - fraction) if fraction > 0.02 else None
        if self.shard is None:
            cancel = services.evaluation_run_report_progress(
                run_id=self.run_id, attempt=self.attempt, progress=fraction, stage=stage, eta_seconds=eta
            )
        else:
            RunShard.objects.filter(run_id=self.run_id, index=self.shard, attempt=self.attempt).update(
                progress=fraction
            )
            overall = RunShard.objects.filter(run_id=self.run_id, attempt=self.attempt).aggregate(p=Avg("progress"))
            cancel = services.evaluation_run_report_progress(
                run_id=self.run_id,
                attempt=self.attempt,
                progress=0.85 * (overall["p"] or 0.0),
                stage=f"{stage} (shard {self.shard + 1})",
                eta_seconds=eta,
            )
        self._last_check = now
        self._stop_requested = self._stop_requested or cancel

    def should_cancel(self) -> bool:
        """True when a user asked to cancel, or this attempt no longer owns the run (checked once per interval)."""
        now = time.monotonic()
        if not self._stop_requested and now - self._last_check >= self.interval:
            self._last_check = now
            row = EvaluationRun.objects.filter(pk=self.run_id).values_list("status", "attempts", "cancel_requested")
            status, attempts, cancel = row.first() or (None, None, True)
            self._stop_requested = cancel or status != RunStatus.RUNNING or attempts != self.attempt
        return self._stop_requested


def set_torch_threads() -> None:
    """Apply ``GARRISON_TORCH_THREADS`` to this worker process."""
    if settings.GARRISON_TORCH_THREADS > 0:
        import torch

        if torch.get_num_threads() != settings.GARRISON_TORCH_THREADS:
            torch.set_num_threads(settings.GARRISON_TORCH_THREADS)


def build_context(run: EvaluationRun, supervisor: Supervisor | None) -> runners.RunContext:
    """The runner's view of a run: its config, model and data, without the database."""
    artifact = run.model_artifact
    model = runners.ModelSpec(
        path=artifact.blob.path,
        format=artifact.format,
        architecture=artifact.architecture,
        hyperparams=dict(artifact.hyperparams),
        input_shape=list(artifact.input_shape),
        bounds=list(artifact.input_bounds),
        class_names=list(artifact.class_names),
        sha256=artifact.sha256,
    )
    data = None
    if run.dataset_id:
        dataset = run.dataset
        data = runners.DataSpec(
            kind=dataset.kind,
            reference_name=dataset.reference_name,
            path=dataset.blob.path if dataset.blob_id else None,
            label_column=dataset.label_column,
            sha256=dataset.sha256,
        )
    ctx = runners.RunContext(kind=run.kind, config=dict(run.config), model=model, dataset=data)
    if supervisor is not None:
        ctx.progress = supervisor.progress
        ctx.should_cancel = supervisor.should_cancel
    return ctx


def _load_run(run_id: int) -> EvaluationRun:
    return EvaluationRun.objects.select_related("system", "model_artifact__blob", "dataset__blob").get(pk=run_id)


def execute(run_id: int, *, worker: str) -> str:
    """Claim and run one evaluation; every outcome ends in a recorded status. Returns what happened."""
    run = services.evaluation_run_claim(run_id=run_id, worker=worker)
    if run is None:
        return "not claimed"
    attempt = run.attempts
    run = _load_run(run_id)
    if run.kind == RunKind.ROBUSTNESS and run.shards > 1:
        return _start_shards(run, attempt)
    with Supervisor(run_id, attempt) as supervisor:
        return _guarded(run_id, attempt, lambda: _finish(run, attempt, runners.run(build_context(run, supervisor))))


def _guarded(run_id: int, attempt: int, work: Any) -> str:
    """Run ``work`` and turn cancellation, time limits and errors into the run's final status."""
    from celery.exceptions import SoftTimeLimitExceeded

    from evaluations.engine.common import Cancelled, EngineInputError

    try:
        set_torch_threads()
        return work()
    except Cancelled:
        services.evaluation_run_mark_cancelled(run_id=run_id, attempt=attempt)
        return "cancelled"
    except SoftTimeLimitExceeded:
        services.evaluation_run_fail(
            run_id=run_id,
            attempt=attempt,
            message=(
                f"The run exceeded the {settings.CELERY_TASK_SOFT_TIME_LIMIT} s time limit; evaluate fewer samples "
                "or budgets, or raise CELERY_TASK_SOFT_TIME_LIMIT."
            ),
        )
        return "timed out"
    except EngineInputError as exc:
        services.evaluation_run_fail(run_id=run_id, attempt=attempt, message=str(exc), traceback=traceback.format_exc())
        return "failed"
    except Exception as exc:  # noqa: BLE001 - any failure must end in a recorded status, never a stuck run
        logger.exception("evaluation run %s failed", run_id)
        services.evaluation_run_fail(
            run_id=run_id,
            attempt=attempt,
            message=f"Unexpected error: {type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
        )
        return "failed"


def _finish(run: EvaluationRun, attempt: int, outcome: runners.RunOutcome) -> str:
    """Store the outcome; register a hardened model as the next version."""
    files = [(f.kind, f.name, f.content_type, f.data) for f in outcome.files]
    if run.kind == RunKind.ROBUSTNESS:
        from garrison.charts import line_chart

        metrics = outcome.metrics
        svg = line_chart(
            [
                {
                    "label": "robust accuracy",
                    "points": list(zip(metrics["epsilons"], metrics["robust_accuracy"], strict=True)),
                }
            ],
            x_label="word edits" if metrics.get("attack") == "text" else f"epsilon ({metrics['norm']})",
            y_label="accuracy",
            y_range=(0.0, 1.0),
            title=f"{metrics['attack'].upper()} robustness curve",
        )
        files.append(("plot", "robustness-curve.svg", "image/svg+xml", svg.encode()))
    done = services.evaluation_run_succeed(
        run_id=run.pk,
        attempt=attempt,
        metrics=outcome.metrics,
        flags=outcome.flags,
        reliable=outcome.reliable,
        reproducibility=outcome.reproducibility,
        engine_seconds=outcome.engine_seconds,
        files=files,
    )
    if done is None:
        return "lost the run"
    if outcome.hardened_model is not None:
        from evaluations.engine.scanning import scan_bytes

        data = outcome.hardened_model["data"]
        report = scan_bytes(data, name=f"run-{run.pk}-hardened.safetensors").to_dict()
        services.model_artifact_register_produced(
            run=done,
            data=data,
            architecture=outcome.hardened_model["architecture"],
            hyperparams=outcome.hardened_model["hyperparams"],
            scan_report=report,
        )
    return "succeeded"


# --- sharded robustness runs ------------------------------------------------------------------------


def _start_shards(run: EvaluationRun, attempt: int) -> str:
    """Split the run's sample units over shard tasks; the last one to finish triggers the merge."""
    from django.db import transaction

    from evaluations.tasks import run_robustness_shard

    def plan() -> list[list[int]]:
        inputs_n = _sample_count(run)
        n_units = len(runners.unit_ranges(inputs_n, run.config["shard_size"]))
        return runners.shard_units(n_units, run.shards)

    def work() -> str:
        groups = plan()
        queue = services._queue_for(run)
        with transaction.atomic():
            RunShard.objects.filter(run=run).delete()
            RunShard.objects.bulk_create(
                [RunShard(run=run, index=i, attempt=attempt, result={"units": g}) for i, g in enumerate(groups)]
            )
            services.evaluation_run_report_progress(
                run_id=run.pk, attempt=attempt, progress=0.0, stage=f"split into {len(groups)} shards", eta_seconds=None
            )
            for index in range(len(groups)):
                transaction.on_commit(
                    lambda index=index: run_robustness_shard.apply_async((run.pk, index, attempt), queue=queue)
                )
        return f"sharded into {len(groups)}"

    return _guarded(run.pk, attempt, work)


def _sample_count(run: EvaluationRun) -> int:
    """How many samples the run evaluates (loads the split once; cheap for the sizes runs use)."""
    ctx = build_context(run, None)
    assert ctx.dataset is not None
    split = runners.load_dataset_split(ctx.dataset, bounds=ctx.model.bounds, class_names=ctx.model.class_names)
    data = split.test if ctx.config["split"] == "test" else split.train
    return min(len(data.y), ctx.config["max_samples"])


def execute_shard(run_id: int, index: int, attempt: int) -> str:
    """Compute one shard's units and store them; enqueue the merge when every shard is done."""
    shard = RunShard.objects.filter(run_id=run_id, index=index, attempt=attempt, done=False).first()
    if (
        shard is None
        or not EvaluationRun.objects.filter(pk=run_id, status=RunStatus.RUNNING, attempts=attempt).exists()
    ):
        return "stale shard"
    run = _load_run(run_id)

    def work() -> str:
        ctx = build_context(run, supervisor)
        inputs = runners.robustness_inputs(ctx)
        results = runners.robustness_units(ctx, inputs, shard.result["units"])
        updated = RunShard.objects.filter(pk=shard.pk, attempt=attempt, done=False).update(
            done=True, progress=1.0, result={"units": shard.result["units"], "results": results}
        )
        if updated and not RunShard.objects.filter(run_id=run_id, attempt=attempt, done=False).exists():
            from evaluations.tasks import merge_robustness_shards

            merge_robustness_shards.apply_async((run_id, attempt), queue=services._queue_for(run))
        return "shard done"

    with Supervisor(run_id, attempt, shard=index) as supervisor:
        return _guarded(run_id, attempt, work)


def merge_shards(run_id: int, attempt: int) -> str:
    """Merge the shard results exactly as an unsharded run would, then sanity-check and store them."""
    claimed = (
        EvaluationRun.objects.filter(pk=run_id, status=RunStatus.RUNNING, attempts=attempt)
        .exclude(stage="merging shards")
        .update(stage="merging shards")
    )
    if claimed != 1:
        return "merge already claimed"
    run = _load_run(run_id)
    shards = list(RunShard.objects.filter(run_id=run_id, attempt=attempt).order_by("index"))
    units = [result for shard in shards for result in shard.result.get("results", [])]

    with Supervisor(run_id, attempt) as supervisor:

        def work() -> str:
            started = time.perf_counter()
            ctx = build_context(run, supervisor)
            inputs = runners.robustness_inputs(ctx)
            merged = runners.robustness_merge(units)
            engine = merged["timings"]["total_seconds"] + (time.perf_counter() - started)
            return _finish(run, attempt, runners.robustness_outcome(ctx, inputs, merged, engine_seconds=engine))

        return _guarded(run_id, attempt, work)


def worker_name(request: Any) -> str:
    """A label for the worker holding a run."""
    close_old_connections()
    return getattr(request, "hostname", None) or "worker"
