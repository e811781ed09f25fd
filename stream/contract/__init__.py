"""The event contract: what upstream systems send and how it is checked at the edge.

``events`` (one frozen pydantic model per event type), ``taxonomy`` (the closed code
sets), ``topics`` (the topic catalogue), ``schemas`` (the published JSON Schemas) and
``decoder`` (a Kafka message in, an event or a reasoned rejection out).
"""
