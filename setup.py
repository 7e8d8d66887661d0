"""Build hooks: the native block clock and byte-compiled sources for editable installs.

* ``emu/pc/_blockclock.c`` is built as an optional extension: plain C (no Python API, no
  Unicorn headers) that emu/pc/clock.py loads with ctypes.  ``optional=True``: without a C
  compiler the install still succeeds and the emulator uses the ``count`` clock.
* An editable install (``pip install -e``) leaves the sources in the tree, and with
  ``PYTHONDONTWRITEBYTECODE=1`` Python would compile every module at every start; the
  in-place build compiles them once, at install time.
"""

import compileall

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExt(build_ext):
    def run(self) -> None:
        super().run()
        if self.inplace:
            for package in ("emu", "devices", "images"):
                compileall.compile_dir(package, quiet=1)


setup(
    ext_modules=[
        Extension("emu.pc._blockclock", ["emu/pc/_blockclock.c"],
                  extra_compile_args=["-O2"], optional=True),
    ],
    cmdclass={"build_ext": BuildExt},
)
