"""Builds exporter._fastscan, the syslog parser's compiled scanner; all else is in pyproject.toml.

The module is optional: where it cannot be compiled (no C compiler or no Python headers)
the install goes on and the parser uses its Python path, which gives the same counts,
only slower (docs/benchmark.md).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("exporter._fastscan", ["exporter/_fastscan.c"], optional=True,
                             extra_compile_args=["-std=c99", "-Wall", "-Wextra", "-Wno-unused-parameter",
                                                 "-Wno-missing-field-initializers", "-Wno-cast-function-type"],
                             extra_link_args=["-pthread"])])
