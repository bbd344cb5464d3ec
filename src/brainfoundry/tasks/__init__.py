"""Downstream tasks: specs (tasks are data), heads, few-shot fine-tuning and evaluation."""

from .spec import TASKS, TaskSpec, alternatives, get_task, load_spec

__all__ = ["TASKS", "TaskSpec", "alternatives", "get_task", "load_spec"]
