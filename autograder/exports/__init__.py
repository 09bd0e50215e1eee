"""Exports of an assignment for the platforms courses grade on: the Gradescope autograder zip,
an nbgrader course and otter-grader tests. Each carries the engine it needs (engine.py)."""


class ExportError(Exception):
    """An export cannot be written (the engine cannot be packaged); the message says why."""
