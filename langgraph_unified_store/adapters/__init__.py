"""Adapters that hand the same stores to CrewAI, AutoGen and LlamaIndex.

Import the submodule you need (``langgraph_unified_store.adapters.crewai``, ...); each
imports its framework lazily and names the extra to install when it is missing.

Long-term memory shared by every framework (one store, one value layout) is
``adapters.memory`` (no framework needed) with ``autogen_memory``, ``llamaindex_memory``
and ``crewai_memory`` on top of it.
"""
