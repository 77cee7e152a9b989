"""Scoring: answer post-processing and benchmark metrics that follow the InternVL V1.2 eval scripts."""
