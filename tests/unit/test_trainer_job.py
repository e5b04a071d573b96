"""The trainer job's stop request (trainer/job.py): what a SIGTERM does depends on when it comes."""

import pytest

from trainer.job import Interrupted, StopRequest


def test_a_stop_between_runs_lets_the_job_end_after_the_run():
    stop = StopRequest()
    stop()  # not training: nothing unwinds
    assert stop.requested


def test_a_stop_while_training_unwinds_the_run_at_once():
    stop = StopRequest()
    stop.training = True
    with pytest.raises(Interrupted):
        stop()
    assert stop.requested


def test_disarm_unwinds_a_stop_already_asked_for_and_lets_a_later_one_wait():
    asked = StopRequest()
    asked.training = True
    asked.requested = True
    with pytest.raises(Interrupted):
        asked.disarm()
    later = StopRequest()
    later.training = True
    later.disarm()  # the candidate is about to be saved: from here a stop waits for the run to end
    later()
    assert later.requested and not later.training
