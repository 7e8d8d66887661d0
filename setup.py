"""Build hook: the native block clock (emu/pc/_blockclock.c) as an optional extension.

The library is plain C (no Python API, no Unicorn headers) loaded with ctypes by
emu/pc/clock.py.  ``optional=True``: without a C compiler the install still succeeds and
the emulator uses the pure-Python ``count`` clock.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("emu.pc._blockclock", ["emu/pc/_blockclock.c"],
                  extra_compile_args=["-O2"], optional=True),
    ],
)
