"""Run an evaluation synchronously in this process (debugging, air-gapped use), no worker needed."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    """``run_evaluation --run ID``, or ``--model ID --user NAME --kind K [--dataset ID|--reference NAME] --config``."""

    help = "Run a queued evaluation run (or a new one from a config) synchronously and print its results."

    def add_arguments(self, parser: Any) -> None:
        """Either an existing run or what to run."""
        parser.add_argument("--run", type=int, help="Id of a queued run to execute here.")
        parser.add_argument("--model", type=int, help="Id of a model version (to queue a new run).")
        parser.add_argument("--kind", default="robustness")
        parser.add_argument("--dataset", type=int)
        parser.add_argument("--reference", help="A built-in reference dataset, e.g. digits.")
        parser.add_argument("--config", default="{}", help="The run config as JSON.")
        parser.add_argument("--user", help="Queue as this user (needs submit rights in the system's team).")

    def handle(self, *args: Any, **options: Any) -> None:
        """Queue if needed, execute, print."""
        from django.contrib.auth import get_user_model
        from django.core.exceptions import ValidationError

        from evaluations import services
        from evaluations.execution import execute
        from evaluations.models import Dataset, EvaluationRun, ModelArtifact

        run_id = options["run"]
        if run_id is None:
            if options["model"] is None or not options["user"]:
                raise CommandError("Give --run ID, or --model ID and --user NAME (and --kind, --config).")
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user named {options['user']}.")
            model = ModelArtifact.objects.select_related("system").get(pk=options["model"])
            dataset = Dataset.objects.get(pk=options["dataset"]) if options["dataset"] else None
            try:
                if options["reference"]:
                    dataset = services.dataset_register_reference(
                        actor=user, system=model.system, reference_name=options["reference"]
                    )
                run = services.evaluation_run_queue(
                    actor=user,
                    system=model.system,
                    kind=options["kind"],
                    model_artifact=model,
                    dataset=dataset,
                    config=json.loads(options["config"]),
                )
            except ValidationError as exc:
                raise CommandError(f"Invalid run: {exc.message_dict}") from exc
            run_id = run.pk
        outcome = execute(run_id, worker="run_evaluation")
        run = EvaluationRun.objects.get(pk=run_id)
        self.stdout.write(f"run #{run.pk}: {outcome} ({run.status})")
        self.stdout.write(
            json.dumps({"metrics": run.metrics, "flags": run.flags, "error": run.error_message}, indent=2)
        )
        if run.status != "succeeded":
            raise SystemExit(1)
