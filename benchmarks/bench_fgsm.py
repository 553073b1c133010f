"""FGSM Linf on the digits CNN: engine vs the gradient floor, ART and torchattacks."""

from __future__ import annotations

import numpy as np
import torch

from benchmarks._digits import BATCH_SIZE, batches, digits
from benchmarks._peers import agreement, art_classifier, gradient_floor, robust_accuracy
from benchmarks._report import Bar, BenchResult, fmt_ms, fmt_pct, table
from benchmarks._timing import interleaved, ratio
from evaluations.engine.robustness import FGSMConfig, fgsm

NAME = "fgsm"
EPS = 0.1
ART_BAR = 1.8


def run(*, quick: bool = False) -> BenchResult:
    """Time FGSM over the 540 test digits in batches of 128, interleaving engine, floor and peers."""
    import torchattacks
    from art.attacks.evasion import FastGradientMethod

    d = digits()
    module, clf = d.module, d.classifier
    bs = batches(d.x_test, d.y_test)
    x_np, y_np = np.array(d.x_test_np), np.array(d.y_test_np)
    config = FGSMConfig(eps=EPS)

    art_attack = FastGradientMethod(
        art_classifier(module), norm=np.inf, eps=EPS, targeted=False, num_random_init=0, batch_size=BATCH_SIZE
    )
    ta_attack = torchattacks.FGSM(module, eps=EPS)

    def engine() -> torch.Tensor:
        return torch.cat([fgsm(clf, xb, yb, config) for xb, yb in bs])

    def floor() -> None:
        gradient_floor(module, bs, 1)

    def floor_cl() -> None:
        gradient_floor(module, bs, 1, channels_last=True)

    def art() -> np.ndarray:
        return art_attack.generate(x=x_np, y=y_np)

    def ta() -> torch.Tensor:
        return torch.cat([ta_attack(xb, yb) for xb, yb in bs])

    repeats = 10 if quick else 60
    cases = {"engine": engine, "floor": floor, "floor_cl": floor_cl, "art": art, "torchattacks": ta}
    t = interleaved(cases, repeats=repeats, warmup=3)

    adv_engine, adv_art, adv_ta = engine(), art(), ta()
    vs_art = agreement(module, adv_engine, adv_art)
    vs_ta = agreement(module, adv_engine, adv_ta)
    rob = {
        "engine": robust_accuracy(module, adv_engine, d.y_test),
        "art": robust_accuracy(module, adv_art, d.y_test),
        "torchattacks": robust_accuracy(module, adv_ta, d.y_test),
    }
    eng = t["engine"].median
    art_ratio = ratio(t["art"].median, eng)
    ta_ratio = ratio(t["torchattacks"].median, eng)
    over_floor = ratio(eng, t["floor"].median)
    over_floor_cl = ratio(eng, t["floor_cl"].median)

    result = BenchResult(name=NAME, title="FGSM Linf (eps 0.1, batch 128)")
    result.tables.append(
        table(
            ["Implementation (540 test digits)", "Median ms", "Min ms", "Time / engine", "Robust acc."],
            [
                [
                    "Floor: 1 x (forward + input-gradient backward)",
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
                ["**Garrison engine** `fgsm`", fmt_ms(eng), fmt_ms(t["engine"].min), "1.00", fmt_pct(rob["engine"])],
                [
                    "ART `FastGradientMethod`",
                    fmt_ms(t["art"].median),
                    fmt_ms(t["art"].min),
                    f"{art_ratio:.2f}",
                    fmt_pct(rob["art"]),
                ],
                [
                    "torchattacks `FGSM`",
                    fmt_ms(t["torchattacks"].median),
                    fmt_ms(t["torchattacks"].min),
                    f"{ta_ratio:.2f}",
                    fmt_pct(rob["torchattacks"]),
                ],
            ],
        )
    )
    result.tables.append(
        table(
            ["Engine vs", "Same prediction", "Max abs difference", "Identical pixels"],
            [
                [
                    name,
                    fmt_pct(a["prediction_agreement"]),
                    f"{a['max_abs_difference']:.3g}",
                    fmt_pct(a["identical_pixels"]),
                ]
                for name, a in (("ART", vs_art), ("torchattacks", vs_ta))
            ],
        )
    )
    result.bars.append(
        Bar(f"ART / engine >= {ART_BAR}", art_ratio >= ART_BAR, f"{art_ratio:.2f} x (medians of {repeats})")
    )
    result.notes.append(
        f"Engine / floor: {over_floor:.2f} x, / channels_last floor: {over_floor_cl:.2f} x (no bar; one step, "
        "so per-call overhead shows)."
    )
    result.data = {
        "timings": {k: v.to_dict() for k, v in t.items()},
        "art_over_engine": art_ratio,
        "torchattacks_over_engine": ta_ratio,
        "engine_over_floor": over_floor,
        "engine_over_channels_last_floor": over_floor_cl,
        "agreement": {"art": vs_art, "torchattacks": vs_ta},
        "robust_accuracy": rob,
    }
    return result
