"""Build step for the one compiled part: the extraction detector's kernels (everything else is in pyproject.toml).

The extension is optional: where it cannot be compiled (no C compiler), the install goes on and the detector runs
its numpy versions of the same arithmetic.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "evaluations.engine.extraction._kernels",
            sources=["evaluations/engine/extraction/_kernels.c"],
            extra_compile_args=["-O3", "-fno-fast-math", "-ffp-contract=off"],
            optional=True,
        )
    ]
)
