"""Build of the compiled hot path (core/_accrual.pyx); everything else is in pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(ext_modules=cythonize(
    [Extension("core._accrual", ["core/_accrual.pyx"], extra_compile_args=["-O2"])],
    compiler_directives={"language_level": "3"}, quiet=True))
