"""`python -m autograder` is the `deepgrade` command."""
from autograder.cli import main

main()
