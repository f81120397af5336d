"""The compiled part of the package; everything else is declared in pyproject.toml.

`collector._otlp_fast` is the fast path of the OTLP protobuf decoder (collector/otlp.py).
It is optional: where it cannot be built (no C compiler, a big-endian host), the install
goes on and the collector uses the reference decoder in Python.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "collector._otlp_fast",
            ["collector/_otlp_fast.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        )
    ]
)
