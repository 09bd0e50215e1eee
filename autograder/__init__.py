"""deepgrade: an auto-graded deep-learning course and a grader that never runs student code in
its own process. See README.md and ../solutions/README.md."""

__version__ = "0.1.0"
