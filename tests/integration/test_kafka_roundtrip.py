import json
import uuid
from collections import defaultdict

from confluent_kafka.admin import AdminClient

from vigil.events import EventSchema
from vigil.kafka.clients import make_consumer, make_producer
from vigil.kafka.produce import produce_frame
from vigil.simulate import FleetSpec, generate_fleet

N_EVENTS = 10_000


def test_topics_exist_with_configured_partitions(settings):
    topics = AdminClient(settings.kafka.client_config()).list_topics(timeout=10).topics
    for name, partitions in settings.topics.partitions().items():
        assert len(topics[name].partitions) == partitions, name


def test_10000_keyed_events_make_the_round_trip_with_nothing_lost(settings, fresh_topic):
    fleet = generate_fleet(FleetSpec(sensors=50, days=2, mean_interval_s=600, seed=21))
    frame = fleet.events.head(N_EVENTS)
    assert len(frame) == N_EVENTS
    assert produce_frame(make_producer(settings), fresh_topic, frame) == N_EVENTS

    # A consumer group, as the streamer will use: subscribe, consume in batches, commit.
    consumer = make_consumer(settings, group_id=f"it-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([fresh_topic])
    schema = EventSchema(settings.features, settings.label_column)
    received, partitions_of = defaultdict(list), defaultdict(set)
    total = 0
    for _ in range(600):  # bounded: at most 600 polls of 0.5 s
        batch = consumer.consume(num_messages=2000, timeout=0.5)
        for msg in batch:
            assert msg.error() is None, msg.error()
            event = schema.parse_json(msg.value())
            assert msg.key().decode() == event.sensor_id
            received[event.sensor_id].append(event.timestamp_ms)
            partitions_of[event.sensor_id].add(msg.partition())
            total += 1
        if batch:
            consumer.commit(asynchronous=False)
        if total >= N_EVENTS:
            break
    consumer.close()

    assert total == N_EVENTS
    expected = frame.groupby("sensor_id").timestamp.apply(list).to_dict()
    assert dict(received) == expected  # every event once, each sensor's events in publish order
    assert all(len(p) == 1 for p in partitions_of.values())  # key → one partition
    assert len({p for ps in partitions_of.values() for p in ps}) > 1  # and keys spread out


def test_committed_offsets_resume_where_the_group_left_off(settings, fresh_topic):
    producer = make_producer(settings)
    group = f"it-{uuid.uuid4().hex[:8]}"
    for i in range(100):
        producer.produce(fresh_topic, key=b"s-1", value=json.dumps({"i": i}).encode())
    producer.flush(30)

    def drain(limit):
        consumer = make_consumer(settings, group_id=group)
        consumer.subscribe([fresh_topic])
        seen = []
        for _ in range(120):
            for msg in consumer.consume(num_messages=limit - len(seen), timeout=0.5):
                seen.append(json.loads(msg.value())["i"])
            if len(seen) >= limit:
                break
        consumer.commit(asynchronous=False)
        consumer.close()
        return seen

    first = drain(40)
    second = drain(60)
    assert first + second == list(range(100))
