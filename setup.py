"""Build the _lateral C extension; metadata lives in pyproject.toml."""
import glob
import os

from setuptools import Extension, setup

SANITIZE = os.environ.get("LATERAL_SANITIZE", "")  # e.g. "address,undefined"

extra_compile = ["-std=c11", "-Wall", "-Wextra", "-fvisibility=hidden"]
extra_link = ["-pthread"]
if SANITIZE:
    extra_compile += [f"-fsanitize={SANITIZE}", "-fno-omit-frame-pointer", "-O1", "-g"]
    extra_link += [f"-fsanitize={SANITIZE}"]
else:
    extra_compile.append("-flto")
    extra_link.append("-flto")

setup(
    ext_modules=[
        Extension(
            "_lateral",
            sources=sorted(glob.glob("src/_lateral/*.c")),
            depends=glob.glob("src/_lateral/*.h"),
            define_macros=[("_GNU_SOURCE", None)],
            extra_compile_args=extra_compile,
            extra_link_args=extra_link,
        )
    ],
)
