"""Exports of an assignment for the platforms courses grade on (the Gradescope autograder zip)."""
