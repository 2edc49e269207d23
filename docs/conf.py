"""Sphinx configuration of lateral's documentation site.

Build it, with lateral and the ``docs`` extra installed (autodoc imports the
installed packages):

    python -m sphinx -W --keep-going -b html docs build/docs

The pages are the Markdown files of this directory (read by myst-parser);
``api/`` holds the reference pages, made by autodoc from the docstrings.
"""
import sys

from sphinx.errors import PycodeError
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging

import _lateral_version

project = "lateral"
author = "the lateral authors"
copyright = "the lateral authors"
release = _lateral_version.version()
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]

# "[text](#a-heading)" links between and within the pages.
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_default_options = {"show-inheritance": True}

html_theme = "alabaster"
html_theme_options = {"description": "parallel tasks on a native worker pool",
                      "fixed_sidebar": True}
html_sidebars = {"**": ["about.html", "navigation.html", "searchbox.html"]}


# A constant that a package re-exports (``strand.COMPLETE`` from
# strand.handles) has its ``#:`` doc comment where it is assigned, but
# autodoc reads the comments of the module it documents only, and else
# shows the docstring of the value's type (``str``): an ``autodata`` in api/
# gets the comment of the definition here instead.
PACKAGES = ("pylateral", "parallel", "strand")
logger = logging.getLogger(__name__)


def defining_comment(name, value):
    """The lines of the ``#:`` comment on ``name`` in the module of
    PACKAGES that binds ``name`` to ``value``, or None."""
    for modname, module in sorted(sys.modules.items()):
        if modname.partition(".")[0] not in PACKAGES or getattr(module, name, None) is not value:
            continue
        try:
            comments = ModuleAnalyzer.for_module(modname).find_attr_docs()
        except PycodeError:
            continue
        if comments.get(("", name)):
            return list(comments[("", name)])
    return None


def document_reexported_constant(app, what, name, obj, options, lines):
    if what != "data":
        return
    comment = defining_comment(name.rpartition(".")[2], obj)
    if not comment:
        # Else the page would show the docstring of the value's type.
        logger.warning("%s has no #: doc comment where it is assigned", name)
    lines[:] = comment or []


def setup(app):
    app.connect("autodoc-process-docstring", document_reexported_constant)
