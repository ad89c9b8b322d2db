from unittest import mock

import pytest
from django.db import transaction

from leadflow.transactions import enqueue_on_commit


@pytest.mark.django_db(transaction=True)
def test_the_task_is_sent_after_the_commit_with_its_arguments_and_options():
    task = mock.Mock()
    with transaction.atomic():
        enqueue_on_commit(task, 7, "x", expires=30.0)
        assert task.apply_async.call_count == 0
    task.apply_async.assert_called_once_with(args=(7, "x"), expires=30.0)


@pytest.mark.django_db(transaction=True)
def test_a_rollback_sends_nothing():
    task = mock.Mock()
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_on_commit(task, 7)
        raise RuntimeError("rolled back")
    assert task.apply_async.call_count == 0


@pytest.mark.django_db(transaction=True)
def test_a_robust_hint_whose_broker_is_down_does_not_fail_the_commit():
    task = mock.Mock()
    task.apply_async.side_effect = ConnectionError("broker down")
    with transaction.atomic():
        enqueue_on_commit(task, robust=True)
    task.apply_async.assert_called_once_with(args=())
