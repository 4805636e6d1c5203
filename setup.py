"""Build of the compiled parts (core/_*.pyx and sim/_*.pyx, one extension each); the rest:
pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

MODULES = ("_cols", "_keys", "_amap", "_lots", "_check", "_inputs", "_engage", "_accrual",
           "_refund", "_lean", "_batch", "_enroll", "_fastparse", "_identity", "_journal",
           "_records")
SIM_MODULES = ("_tick", "_calendar")

setup(ext_modules=cythonize(
    [Extension(f"{pkg}.{m}", [f"{pkg}/{m}.pyx"], extra_compile_args=["-O2"])
     for pkg, mods in (("core", MODULES), ("sim", SIM_MODULES)) for m in mods],
    compiler_directives={"language_level": "3"}, quiet=True))
