"""LLM failover gateway."""
