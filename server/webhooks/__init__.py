"""Outgoing webhooks: signing (Standard Webhooks), target checks (SSRF) and the retry schedule."""
