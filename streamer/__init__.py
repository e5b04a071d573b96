"""The streamer service: Kafka → Redis rolling buffers → batched scoring → scores and alerts.

Composes the stages in ``vigil``; it holds no featurisation or model logic of its own.
"""
