"""The topic catalogue: the worker's own repartition topic belongs to one app id."""

from __future__ import annotations

from pathlib import Path

from stream.contract.topics import CHILDREN, folded, is_internal, load_topics, repartition_topic


def test_the_repartition_topic_is_named_for_the_app_id_like_a_changelog():
    assert repartition_topic("cspa") == "cspa-children-repartition"
    # a side-by-side rebuild under a new app id has its own: neither folds the other's hops
    assert repartition_topic("cspa-2027") == "cspa-2027-children-repartition"
    spec = load_topics(app_id="cspa-2027")[CHILDREN]
    assert spec.internal and spec.partitions == 6 and spec.key == "child_key"


def test_without_an_app_id_only_the_contracts_topics_are_listed():
    topics = load_topics()
    assert CHILDREN not in topics and CHILDREN not in folded(topics)
    assert not any("{" in spec.name for spec in topics.values())
    assert set(load_topics(app_id="cspa")) - set(topics) == {CHILDREN}
    assert folded(load_topics(app_id="cspa"))[CHILDREN].name == "cspa-children-repartition"


def test_a_template_names_only_internal_topics_and_others_keep_their_names(tmp_path: Path):
    catalogue = tmp_path / "topics.toml"
    catalogue.write_text(
        '[contacts]\ntopic = "cspa.contacts.v1"\nkey = "contact_key"\npartitions = 6\n'
        'retention_ms = 1\nevent_types = ["contact.received"]\n'
        '[children]\ntopic = "{app_id}-children-repartition"\nkey = "child_key"\n'
        'partitions = 3\nretention_ms = 1\ninternal = true\nevent_types = []\n')
    named = load_topics(catalogue, "x")
    assert {s.name for s in named.values()} == {"cspa.contacts.v1", "x-children-repartition"}
    assert set(load_topics(catalogue)) == {"contacts"}


def test_a_repartition_topic_of_any_app_id_is_internal_and_no_event_topic_is():
    assert is_internal("cspa-children-repartition")
    assert is_internal("cspa-rebuild-2027-children-repartition")  # a side-by-side app id
    assert not is_internal("-children-repartition")  # no app id
    for spec in load_topics().values():
        assert not is_internal(spec.name), spec.name
