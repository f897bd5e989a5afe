"""Notification channels: the in-app inbox, email (queued, sent by a worker) and webhooks (via events)."""
