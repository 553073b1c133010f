"""Side-by-side benchmarks of the evaluation engine against peer libraries (ART, torchattacks, modelscan).

Benchmarks are not tests: they measure time and quality on the reference workloads and print Markdown
tables (the figures in ``docs/benchmarks.md`` come from them). Run ``make bench`` or
``python -m benchmarks [--only NAME] [--quick]``.
"""

from __future__ import annotations
