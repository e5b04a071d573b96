"""The trainer job: refit on recent normal sensors, validate against the current model, promote.

Composes the stages in ``vigil``; it holds no featurisation or model logic of its own.
"""
