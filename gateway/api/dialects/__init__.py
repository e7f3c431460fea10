"""Inbound dialects: the Anthropic Messages API and the OpenAI Responses API, spoken at the edge.

Each dialect is a pure translator (``anthropic_messages``, ``responses``): its request -> the internal
OpenAI-shaped chat request; the internal answer (a ``chat.completion`` dict, ``chat.completion.chunk`` events,
OpenAI error envelopes) -> its own wire format. ``endpoint`` wraps the ONE chat pipeline
(``gateway.api.chat.ChatEndpoint``: auth, route selection, policy, failover engine, streaming relay) with
those translators, so every dialect gets the same routing, failover and streaming rules.
"""
