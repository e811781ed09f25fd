"""The replication check's rule (plain function), the settings that feed it, and the local
cluster's broker configuration. The check against a real broker is in
tests/integration/test_replication_check.py; a three-broker cluster in tests/faults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from stream.dev.broker import BrokerConfig, new_topic
from stream.settings import Settings
from stream.worker.replication import TopicCopies, Wanted, refusal, wanted

THREE = Wanted(3, 2)


def test_topics_with_enough_copies_pass():
    topics = [TopicCopies("a", 3, 2), TopicCopies("b", 4, 3)]
    assert refusal(topics, THREE) is None


def test_too_few_replicas_names_the_topic_its_count_and_the_setting():
    line = refusal([TopicCopies("good", 3, 2), TopicCopies("cspa.calls.v1", 1, 2)], THREE)
    assert line == ("refusing to start: topic cspa.calls.v1 has 1 replicas, "
                    "CSPA_REPLICATION_FACTOR is 3")


def test_several_faults_name_the_first_by_name_and_count_the_rest():
    topics = [TopicCopies("z", 1, 2), TopicCopies("m", 2, 2), TopicCopies("a", 3, 2)]
    line = refusal(topics, THREE)
    assert line is not None
    assert "topic m has 2 replicas" in line and line.endswith("(and 1 more topics)")
    assert "\n" not in line


def test_min_insync_below_the_setting_is_refused():
    line = refusal([TopicCopies("t", 3, 1)], THREE)
    assert line == ("refusing to start: topic t has min.insync.replicas=1, "
                    "CSPA_MIN_INSYNC_REPLICAS is 2")


def test_min_insync_not_configured_or_not_read_is_not_compared():
    assert refusal([TopicCopies("t", 3, 1)], Wanted(3, None)) is None
    assert refusal([TopicCopies("t", 3, None)], THREE) is None


def test_min_insync_above_the_replicas_is_refused_whatever_the_settings():
    line = refusal([TopicCopies("t", 1, 2)], Wanted(None, None))
    assert line is not None and "min.insync.replicas=2 but 1 replicas" in line


def test_a_missing_topic_is_refused():
    assert refusal([TopicCopies("t", 0)], Wanted(None, None)) == (
        "refusing to start: topic t does not exist")


def test_minus_one_compares_with_the_clusters_default_when_read():
    assert wanted(3, 2, cluster_default=1) == Wanted(3, 2)
    by_default = wanted(-1, None, cluster_default=3)
    assert by_default.replicas == 3
    line = refusal([TopicCopies("t", 1)], by_default)
    assert line == ("refusing to start: topic t has 1 replicas, "
                    "the cluster's default.replication.factor is 3")
    # unreadable default: nothing to compare the replicas with
    assert refusal([TopicCopies("t", 1)], wanted(-1, None, cluster_default=None)) is None


def test_settings_defaults_are_the_clusters_own(monkeypatch):
    settings = Settings()
    assert (settings.replication_factor, settings.min_insync_replicas) == (-1, None)
    monkeypatch.setenv("CSPA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("CSPA_MIN_INSYNC_REPLICAS", "2")
    settings = Settings()
    assert (settings.replication_factor, settings.min_insync_replicas) == (3, 2)


@pytest.mark.parametrize("rf, isr", [(0, None), (-2, None), (2, 3), (3, 0)])
def test_settings_refuse_impossible_replication(rf, isr):
    with pytest.raises(ValidationError):
        Settings(replication_factor=rf, min_insync_replicas=isr)


def test_new_topic_carries_minus_one_to_the_request():
    topic = new_topic("t", 6, -1, {"min.insync.replicas": "2"})
    assert (topic.num_partitions, topic.replication_factor) == (6, -1)
    assert topic.replica_assignments == {}
    assert new_topic("t", 6, 3, {}).replication_factor == 3


def test_a_single_broker_is_its_own_quorum_with_unreplicated_internal_topics():
    props = BrokerConfig(Path("/tmp/b"), port=1, controller_port=2).properties()
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:2"
    assert "controller.quorum.voters" not in props
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"


def test_cluster_nodes_share_a_static_quorum_and_replicate_internal_topics():
    voters = {1: 11, 2: 12, 3: 13}
    props = BrokerConfig(Path("/tmp/b"), port=21, controller_port=12, node_id=2,
                         voters=voters).properties()
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == (
        "1@127.0.0.1:11,2@127.0.0.1:12,3@127.0.0.1:13")
    assert "controller.quorum.bootstrap.servers" not in props
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:21,CONTROLLER://127.0.0.1:12"
    assert props["offsets.topic.replication.factor"] == "3"
    assert props["transaction.state.log.replication.factor"] == "3"
    assert props["transaction.state.log.min.isr"] == "2"
