"""Build of the compiled parts (core/_*.pyx, one extension each); the rest: pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

MODULES = ("_keys", "_lots", "_check", "_inputs", "_engage", "_accrual", "_batch", "_fastparse",
           "_identity", "_journal", "_records")

setup(ext_modules=cythonize(
    [Extension(f"core.{m}", [f"core/{m}.pyx"], extra_compile_args=["-O2"]) for m in MODULES],
    compiler_directives={"language_level": "3"}, quiet=True))
