"""PGD-20 Linf on the digits CNN: engine vs the gradient floor, ART and torchattacks; ART agreement."""

from __future__ import annotations

import numpy as np
import torch

from benchmarks._digits import BATCH_SIZE, SEED, batches, digits
from benchmarks._peers import agreement, art_classifier, gradient_floor, robust_accuracy
from benchmarks._report import Bar, BenchResult, fmt_ms, fmt_pct, table
from benchmarks._timing import interleaved, ratio
from evaluations.engine.robustness import PGDConfig, pgd

NAME = "pgd"
EPS, STEP, STEPS = 0.1, 0.01, 20
#: The comparison run: no random start, so every implementation takes the same deterministic path.
CONFIG = PGDConfig(eps=EPS, step_size=STEP, steps=STEPS, random_start=False)
FLOOR_BAR, ART_BAR = 1.10, 1.8


def run(*, quick: bool = False) -> BenchResult:
    """Time PGD-20 over the 540 test digits in batches of 128, interleaving engine, floor and peers."""
    import torchattacks
    from art.attacks.evasion import ProjectedGradientDescentPyTorch

    d = digits()
    module, clf = d.module, d.classifier
    bs = batches(d.x_test, d.y_test)
    x_np, y_np = np.array(d.x_test_np), np.array(d.y_test_np)

    art_attack = ProjectedGradientDescentPyTorch(
        art_classifier(module),
        norm=np.inf,
        eps=EPS,
        eps_step=STEP,
        max_iter=STEPS,
        targeted=False,
        num_random_init=0,
        batch_size=BATCH_SIZE,
        verbose=False,
    )
    ta_attack = torchattacks.PGD(module, eps=EPS, alpha=STEP, steps=STEPS, random_start=False)

    def engine() -> torch.Tensor:
        return torch.cat([pgd(clf, xb, yb, CONFIG, seed=SEED) for xb, yb in bs])

    def floor() -> None:
        gradient_floor(module, bs, STEPS)

    def floor_cl() -> None:
        gradient_floor(module, bs, STEPS, channels_last=True)

    def art() -> np.ndarray:
        return art_attack.generate(x=x_np, y=y_np)

    def ta() -> torch.Tensor:
        return torch.cat([ta_attack(xb, yb) for xb, yb in bs])

    repeats = 3 if quick else 21
    cases = {"engine": engine, "floor": floor, "floor_cl": floor_cl, "art": art, "torchattacks": ta}
    t = interleaved(cases, repeats=repeats, warmup=1)

    adv_engine, adv_art, adv_ta = engine(), art(), ta()
    vs_art = agreement(module, adv_engine, adv_art)
    vs_ta = agreement(module, adv_engine, adv_ta)
    rob = {
        "engine": robust_accuracy(module, adv_engine, d.y_test),
        "art": robust_accuracy(module, adv_art, d.y_test),
        "torchattacks": robust_accuracy(module, adv_ta, d.y_test),
    }
    eng = t["engine"].median
    over_floor = ratio(eng, t["floor"].median)
    over_floor_cl = ratio(eng, t["floor_cl"].median)
    art_ratio = ratio(t["art"].median, eng)
    ta_ratio = ratio(t["torchattacks"].median, eng)

    result = BenchResult(name=NAME, title="PGD-20 Linf (eps 0.1, step 0.01, no random start, batch 128)")
    rows = [
        [
            "Floor: 20 x (forward + input-gradient backward)",
            fmt_ms(t["floor"].median),
            fmt_ms(t["floor"].min),
            f"{ratio(t['floor'].median, eng):.2f}",
            "-",
        ],
        [
            "Floor, channels_last batches (the engine's layout)",
            fmt_ms(t["floor_cl"].median),
            fmt_ms(t["floor_cl"].min),
            f"{ratio(t['floor_cl'].median, eng):.2f}",
            "-",
        ],
        ["**Garrison engine** `pgd`", fmt_ms(eng), fmt_ms(t["engine"].min), "1.00", fmt_pct(rob["engine"])],
        [
            "ART `ProjectedGradientDescentPyTorch`",
            fmt_ms(t["art"].median),
            fmt_ms(t["art"].min),
            f"{art_ratio:.2f}",
            fmt_pct(rob["art"]),
        ],
        [
            "torchattacks `PGD`",
            fmt_ms(t["torchattacks"].median),
            fmt_ms(t["torchattacks"].min),
            f"{ta_ratio:.2f}",
            fmt_pct(rob["torchattacks"]),
        ],
    ]
    result.tables.append(
        table(["Implementation (540 test digits)", "Median ms", "Min ms", "Time / engine", "Robust acc."], rows)
    )
    result.tables.append(
        table(
            ["Engine vs", "Same prediction", "Max abs difference", "Identical pixels"],
            [
                [
                    "ART",
                    fmt_pct(vs_art["prediction_agreement"]),
                    f"{vs_art['max_abs_difference']:.3g}",
                    fmt_pct(vs_art["identical_pixels"]),
                ],
                [
                    "torchattacks",
                    fmt_pct(vs_ta["prediction_agreement"]),
                    f"{vs_ta['max_abs_difference']:.3g}",
                    fmt_pct(vs_ta["identical_pixels"]),
                ],
            ],
        )
    )
    result.bars += [
        Bar(
            f"engine <= {FLOOR_BAR:.2f} x floor",
            over_floor <= FLOOR_BAR,
            f"{over_floor:.3f} x ({fmt_ms(eng)} ms vs {fmt_ms(t['floor'].median)} ms, medians of {repeats})",
        ),
        Bar(f"ART / engine >= {ART_BAR}", art_ratio >= ART_BAR, f"{art_ratio:.2f} x"),
        Bar(
            "same adversarial examples as ART (no random start)",
            vs_art["prediction_agreement"] == 1.0,
            f"{fmt_pct(vs_art['prediction_agreement'])} same predictions, "
            f"max abs difference {vs_art['max_abs_difference']:.3g}",
        ),
    ]
    result.notes.append(
        "ART's `generate` also runs a success-rate pass (two predictions over the set) after the attack; "
        "that is part of what a caller pays, so it is in ART's time. ART computes parameter gradients on "
        "every step (`loss.backward()`); the engine (`torch.autograd.grad` w.r.t. the input) and the floors "
        "(frozen parameters) compute none. The engine lays conv-net batches out `channels_last` on the CPU "
        "(same operations, same values up to float rounding); against the floor in that layout it takes "
        f"{over_floor_cl:.2f} x."
    )
    result.data = {
        "timings": {k: v.to_dict() for k, v in t.items()},
        "engine_over_floor": over_floor,
        "engine_over_channels_last_floor": over_floor_cl,
        "art_over_engine": art_ratio,
        "torchattacks_over_engine": ta_ratio,
        "agreement": {"art": vs_art, "torchattacks": vs_ta},
        "robust_accuracy": rob,
        "clean_accuracy": d.clean_accuracy,
    }
    return result
