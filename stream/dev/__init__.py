"""Development tooling: the local Kafka broker that ``make run``, the tests and the
benchmark start from the Maven Central jars."""
