"""Build of the compiled parts (core/_accrual.pyx, _inputs.pyx, _identity.pyx, _keys.pyx);
the rest: pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(ext_modules=cythonize(
    [Extension("core._keys", ["core/_keys.pyx"], extra_compile_args=["-O2"]),
     Extension("core._accrual", ["core/_accrual.pyx"], extra_compile_args=["-O2"]),
     Extension("core._inputs", ["core/_inputs.pyx"], extra_compile_args=["-O2"]),
     Extension("core._identity", ["core/_identity.pyx"], extra_compile_args=["-O2"])],
    compiler_directives={"language_level": "3"}, quiet=True))
