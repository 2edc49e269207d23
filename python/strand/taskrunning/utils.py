"""``strand.taskrunning.utils``: :func:`strand.run_process`,
``resolve_runner_cls`` (the Taskrunner class of a target name or class) and
``conditional_logger``."""
from ..decorator import resolve_target as resolve_runner_cls
from ..launcher import conditional_logger, run_process

__all__ = ["conditional_logger", "resolve_runner_cls", "run_process"]
