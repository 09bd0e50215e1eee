"""The concept checks, graded against the plain answers of ../quiz.yml on the trusted side.

One case per question. answers.yml is the submission's data, parsed safely by the
`quiz_answers` fixture; no student code runs here.
"""
from pathlib import Path

import pytest

from autograder.quiz import grade_answer, load_quiz

QUESTIONS = load_quiz(Path(__file__).resolve().parent.parent / "quiz.yml").questions


@pytest.mark.parametrize("question", QUESTIONS, ids=[q.id for q in QUESTIONS])
def test_quiz_question(question, quiz_answers):
    right, feedback = grade_answer(question, quiz_answers)
    if not right:
        pytest.fail(feedback, pytrace=False)
