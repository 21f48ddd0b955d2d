import pytest
from redis.client import Pipeline


@pytest.fixture
def pipeline_executes(monkeypatch):
    """The number of commands of every redis-py pipeline execute (one round trip to one Redis host)."""
    executes = []
    execute = Pipeline.execute

    def counted(pipeline, *args, **kwargs):
        executes.append(len(pipeline.command_stack))
        return execute(pipeline, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", counted)
    return executes
