"""One workflow, five hops: LangGraph -> CrewAI -> AutoGen -> LlamaIndex -> LangGraph.

Every framework reads the same stored thread and writes its turn back onto it; at the
end LangGraph sees every earlier message (tool calls and results included) and every
context value, and the script prints which framework wrote each checkpoint.

Then one long-term memory, shared: AutoGen stores a fact about the traveller (with its
metadata) through its ``Memory`` interface, LlamaIndex recalls it through a memory block
and stores one of its own, CrewAI recalls both through its ``Memory`` and stores a third,
and a LangGraph node finds all three with ``get_store()``; the store is on the same
backend as the checkpoints, with an offline hashed embedding as its index.

Runs offline, no API keys: LangGraph and CrewAI nodes write deterministic replies,
AutoGen answers through ``ReplayChatCompletionClient``, LlamaIndex through ``MockLLM``.

    python examples/framework_switch.py                       # SQLite under ./.langgraph_unified_store/
    python examples/framework_switch.py --url memory://
    python examples/framework_switch.py --url postgresql://postgres@127.0.0.1:5432/test
    python examples/framework_switch.py --url redis://127.0.0.1:6379/0

Exits 1 if any message, id, tool call, context value or memory was lost on the way.
"""

from __future__ import annotations

import os

# CrewAI and OpenTelemetry stay quiet and offline.
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")

import argparse
import asyncio
import itertools
import logging
import sys
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore

from langgraph_unified_store import (
    UnifiedCheckpointSaver,
    UnifiedMessage,
    UnifiedWorkflowState,
    create_saver,
    create_store,
)
from langgraph_unified_store.adapters.memory import hashed_embedding, memory_namespace

FRAMEWORKS = ("crewai", "autogen", "llamaindex")


# -- LangGraph -----------------------------------------------------------------------------


class TripState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    topic: str
    plan: list[str]  # written by CrewAI
    budget_eur: float  # written by AutoGen's tool, through the thread
    summary: str  # written by LlamaIndex
    final_view: dict[str, Any]  # what the last LangGraph turn saw


def _langgraph_reply(state: TripState) -> dict[str, Any]:
    """A deterministic stand-in for a chat model, so the demo needs no API key."""
    messages = state.get("messages") or []
    turn = sum(1 for m in messages if isinstance(m, HumanMessage))
    question = messages[-1].text if messages else ""
    if turn == 2:
        # A tool round trip, so tool calls and results travel through every framework.
        call_id = "call_weather_1"
        return {
            "messages": [
                AIMessage(
                    content="Let me check the weather in Sintra.",
                    tool_calls=[{"id": call_id, "name": "weather", "args": {"city": "Sintra"}}],
                ),
                ToolMessage(content="18 C, light fog", tool_call_id=call_id, name="weather"),
                AIMessage(content="[langgraph] Sintra: 18 C and foggy, bring a jacket."),
            ]
        }
    if turn <= 1:
        return {
            "messages": [AIMessage(content=f"[langgraph] Noted: {question}")],
            "topic": "Lisbon trip",
        }
    seen = {
        "messages": len(messages),
        "writers": sorted({str(m.name) for m in messages if m.name}),
        "topic": state.get("topic"),
        "plan": state.get("plan"),
        "budget_eur": state.get("budget_eur"),
        "summary": state.get("summary"),
    }
    return {
        "messages": [
            AIMessage(
                content=(
                    f"[langgraph] Final answer after {len(messages)} messages: "
                    f"{state.get('topic')}, plan {state.get('plan')}, "
                    f"budget {state.get('budget_eur')} EUR, summary {state.get('summary')!r}."
                )
            )
        ],
        "final_view": seen,
    }


def build_graph(saver: UnifiedCheckpointSaver) -> CompiledStateGraph[Any, Any, Any, Any]:
    builder = StateGraph(TripState)
    builder.add_node("assistant", _langgraph_reply)
    builder.add_edge(START, "assistant")
    builder.add_edge("assistant", END)
    return builder.compile(checkpointer=saver)


async def langgraph_turn(saver: UnifiedCheckpointSaver, workflow_id: str, text: str) -> None:
    graph = build_graph(saver)
    await graph.ainvoke(
        {"messages": [HumanMessage(content=text)]},
        {"configurable": {"thread_id": workflow_id}},
    )


# -- CrewAI --------------------------------------------------------------------------------


async def crewai_turn(saver: UnifiedCheckpointSaver, workflow_id: str) -> None:
    from crewai.flow.flow import Flow, listen, start
    from crewai.flow.persistence import persist

    from langgraph_unified_store.adapters.crewai import (
        UnifiedFlowPersistence,
        UnifiedFlowState,
    )

    @persist(UnifiedFlowPersistence(saver))
    class PlanningFlow(Flow[UnifiedFlowState]):  # type: ignore[misc]
        suppress_flow_events: bool = True

        @start()
        def request(self) -> None:
            self.state.add_message("user", "CrewAI, turn this into a three-day plan.")

        @listen(request)
        def plan(self) -> None:
            earlier = len(self.state.messages) - 1
            topic = self.state.context.get("topic", "?")
            days = ["Day 1: Alfama and Baixa", "Day 2: Sintra", "Day 3: Belem"]
            self.state.context["plan"] = days
            self.state.add_message(
                "assistant",
                f"[crewai] Plan for {topic} built on {earlier} earlier messages: "
                + "; ".join(days),
                name="crewai_planner",
            )

    await PlanningFlow().kickoff_async(inputs={"id": workflow_id})


# -- AutoGen -------------------------------------------------------------------------------


async def autogen_turn(saver: UnifiedCheckpointSaver, workflow_id: str) -> int:
    """Returns how many messages AutoGen's model was shown."""
    from autogen_agentchat.agents import AssistantAgent
    from autogen_core import FunctionCall
    from autogen_core.models import CreateResult, ModelInfo, RequestUsage
    from autogen_ext.models.replay import ReplayChatCompletionClient

    from langgraph_unified_store.adapters.autogen import AutoGenStateStore

    def budget(days: int, per_day_eur: float) -> str:
        """Total budget for a trip."""
        return f"{days * per_day_eur:.0f} EUR"

    client = ReplayChatCompletionClient(
        [
            CreateResult(
                finish_reason="function_calls",
                content=[
                    FunctionCall(
                        id="call_budget_1",
                        name="budget",
                        arguments='{"days": 3, "per_day_eur": 140.0}',
                    )
                ],
                usage=RequestUsage(prompt_tokens=0, completion_tokens=0),
                cached=False,
                thought="I will price the plan.",
            ),
            "[autogen] Budget: 420 EUR for three days.",
        ],
        model_info=ModelInfo(
            vision=False,
            function_calling=True,
            json_output=False,
            family="unknown",
            structured_output=False,
        ),
    )
    agent = AssistantAgent(
        "autogen_budgeter",
        model_client=client,
        tools=[budget],
        reflect_on_tool_use=True,
        system_message="You price travel plans.",
    )
    store = AutoGenStateStore(saver)
    await store.load(workflow_id, agent)
    await agent.run(task="AutoGen, what will the plan cost?")
    await store.save(workflow_id, agent)
    # A context value for the next frameworks, written through the neutral API.
    state = await saver.aload_state(workflow_id)
    assert state is not None
    state.update_context(budget_eur=420.0)
    await saver.asave_state(workflow_id, state, framework="autogen")
    return len(client.create_calls[0]["messages"])


# -- LlamaIndex ----------------------------------------------------------------------------


async def llamaindex_turn(saver: UnifiedCheckpointSaver, workflow_id: str) -> str:
    """Returns what the MockLLM (which echoes its prompt) was shown."""
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.llms import MockLLM
    from llama_index.core.memory import Memory
    from workflows import Context, Workflow, step
    from workflows.events import StartEvent, StopEvent

    from langgraph_unified_store.adapters.llamaindex import (
        LlamaIndexContextStore,
        UnifiedDBChatStore,
    )

    class SummaryWorkflow(Workflow):
        @step
        async def summarize(self, ctx: Context, ev: StartEvent) -> StopEvent:
            memory = await ctx.store.get("memory", default=None)
            if memory is None:
                memory = Memory.from_defaults(
                    session_id=workflow_id,
                    chat_store=UnifiedDBChatStore(saver),
                    tokenizer_fn=lambda text: text.split(),
                )
                await ctx.store.set("memory", memory)
            question = ChatMessage(role="user", content="LlamaIndex, summarize the trip.")
            history = await memory.aget()
            reply = await MockLLM().achat([*history, question])
            plan = await ctx.store.get("plan", default=[])
            budget = await ctx.store.get("budget_eur", default=None)
            await ctx.store.set("summary", f"{len(plan)} days, {budget} EUR")
            await memory.aput_messages([question, reply.message])
            return StopEvent(result=reply.message.content or "")

    workflow = SummaryWorkflow()
    contexts = LlamaIndexContextStore(saver)
    ctx = await contexts.load(workflow_id, workflow)
    prompt = str(await workflow.run(ctx=ctx))
    await contexts.save(workflow_id, ctx)
    return prompt


# -- one long-term memory, every framework -----------------------------------------------

MEMORY_DIMS = 64
AUTOGEN_FACT = "The traveller is vegetarian and avoids peanuts."
AUTOGEN_METADATA = {"source": "intake form", "confidence": 0.9}
LLAMAINDEX_FACT = "The traveller prefers a window seat on flights."
CREWAI_FACT = "Day 2 in Sintra needs a rain jacket."


def memory_index() -> dict[str, Any]:
    """The store's index: an offline, deterministic embedding of each memory's text."""
    return {"dims": MEMORY_DIMS, "embed": hashed_embedding(MEMORY_DIMS), "fields": ["text"]}


async def autogen_remembers(store: BaseStore, user: str) -> list[str]:
    """AutoGen stores a fact through its Memory interface, then recalls what it holds
    into a model context, as an agent with ``memory=[...]`` does before each reply."""
    from autogen_core.memory import MemoryContent, MemoryMimeType
    from autogen_core.model_context import UnboundedChatCompletionContext
    from autogen_core.models import UserMessage

    from langgraph_unified_store.adapters.autogen_memory import UnifiedAutoGenMemory

    memory = UnifiedAutoGenMemory(store, memory_namespace(user), created_by="autogen_budgeter")
    await memory.add(
        MemoryContent(content=AUTOGEN_FACT, mime_type=MemoryMimeType.TEXT, metadata=AUTOGEN_METADATA)
    )
    context = UnboundedChatCompletionContext()
    await context.add_message(UserMessage(content="Is the traveller vegetarian?", source="user"))
    updated = await memory.update_context(context)
    return [str(item.content) for item in updated.memories.results]


async def llamaindex_recalls(store: BaseStore, user: str) -> str:
    """LlamaIndex's Memory recalls through a memory block (its text goes into the system
    message), and the block stores a message of its own. Returns the system message."""
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.memory import Memory

    from langgraph_unified_store.adapters.llamaindex_memory import UnifiedMemoryBlock

    block = UnifiedMemoryBlock(store=store, namespace=memory_namespace(user))
    memory = Memory.from_defaults(
        session_id=f"{user}-chat", memory_blocks=[block], tokenizer_fn=lambda text: text.split()
    )
    await memory.aput(ChatMessage(role="user", content="Book a dinner; is the traveller vegetarian?"))
    messages = await memory.aget()
    await block.aput(
        [ChatMessage(role="user", content=LLAMAINDEX_FACT, additional_kwargs={"topic": "flights"})],
        session_id=f"{user}-chat",
    )
    return next((m.content or "" for m in messages if m.role.value == "system"), "")


def crewai_recalls(store: BaseStore, user: str) -> list[dict[str, Any]]:
    """CrewAI's Memory recalls what AutoGen and LlamaIndex stored and remembers a fact of
    its own (every field given, so no LLM is asked)."""
    from crewai.events.event_listener import event_listener

    from langgraph_unified_store.adapters.crewai_memory import crewai_memory

    event_listener.formatter.verbose = False  # no console panels for each memory event
    memory = crewai_memory(store, memory_namespace(user), llm="gpt-4o-mini")
    try:
        matches = memory.recall("vegetarian traveller window seat", depth="shallow", limit=5)
        memory.remember(
            CREWAI_FACT, scope="/trip", categories=["packing"], importance=0.8, metadata={"day": 2}
        )
    finally:
        memory.close()
    return [{"text": m.record.content, "metadata": m.record.metadata} for m in matches]


class MemoryState(TypedDict, total=False):
    user: str
    question: str
    recalled: list[dict[str, Any]]


async def recall_node(state: MemoryState) -> dict[str, Any]:
    """A LangGraph node: the graph's store (``compile(store=...)``), via ``get_store()``."""
    from langgraph.config import get_store

    found = await get_store().asearch(memory_namespace(state["user"]), query=state["question"], limit=10)
    return {
        "recalled": [
            {
                "text": item.value["text"],
                "framework": item.value["framework"],
                "metadata": item.value["metadata"],
                "namespace": list(item.namespace),
            }
            for item in found
        ]
    }


async def langgraph_recalls(store: BaseStore, user: str) -> list[dict[str, Any]]:
    builder = StateGraph(MemoryState)
    builder.add_node("recall", recall_node)
    builder.add_edge(START, "recall")
    builder.add_edge("recall", END)
    graph = builder.compile(store=store)
    result = await graph.ainvoke({"user": user, "question": "What does the traveller need?"})
    recalled: list[dict[str, Any]] = result["recalled"]
    return recalled


@dataclass
class MemoryReport:
    user: str
    autogen_saw: list[str] = field(default_factory=list)
    llamaindex_saw: str = ""
    crewai_saw: list[dict[str, Any]] = field(default_factory=list)
    langgraph_saw: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


async def run_memory_switch(store: BaseStore, user: str) -> MemoryReport:
    """AutoGen -> LlamaIndex -> CrewAI -> LangGraph on one memory scope, and the check
    that each saw what the earlier ones stored, metadata included."""
    report = MemoryReport(user)
    report.autogen_saw = await autogen_remembers(store, user)
    report.llamaindex_saw = await llamaindex_recalls(store, user)
    report.crewai_saw = await asyncio.to_thread(crewai_recalls, store, user)
    report.langgraph_saw = await langgraph_recalls(store, user)
    if AUTOGEN_FACT not in report.autogen_saw:
        report.problems.append("AutoGen did not recall its own fact into the model context")
    if AUTOGEN_FACT not in report.llamaindex_saw:
        report.problems.append("LlamaIndex did not recall the fact AutoGen stored")
    crewai = {m["text"]: m["metadata"] for m in report.crewai_saw}
    if crewai.get(AUTOGEN_FACT) != AUTOGEN_METADATA:
        report.problems.append(f"CrewAI did not recall AutoGen's fact with its metadata: {crewai}")
    if crewai.get(LLAMAINDEX_FACT) != {"topic": "flights"}:
        report.problems.append(f"CrewAI did not recall LlamaIndex's memory with its metadata: {crewai}")
    seen = {m["text"]: m for m in report.langgraph_saw}
    wanted = {AUTOGEN_FACT: "autogen", LLAMAINDEX_FACT: "llamaindex", CREWAI_FACT: "crewai"}
    for text, framework in wanted.items():
        if text not in seen:
            report.problems.append(f"the LangGraph node did not recall {framework}'s memory {text!r}")
        elif seen[text]["framework"] != framework:
            report.problems.append(f"{text!r} lost its writer: {seen[text]['framework']}")
    if AUTOGEN_FACT in seen and seen[AUTOGEN_FACT]["metadata"] != AUTOGEN_METADATA:
        report.problems.append("the LangGraph node got AutoGen's fact without its metadata")
    if CREWAI_FACT in seen and seen[CREWAI_FACT]["metadata"] != {"day": 2}:
        report.problems.append("the LangGraph node got CrewAI's fact without its metadata")
    return report


def print_memory_report(report: MemoryReport) -> None:
    print(f"\nshared memory {memory_namespace(report.user)}:")
    print(f"  autogen    stored and recalled: {report.autogen_saw}")
    recalled = [line for line in report.llamaindex_saw.splitlines() if line.startswith("- ")]
    print(f"  llamaindex recalled: {recalled}")
    print(f"  crewai     recalled: {[m['text'] for m in report.crewai_saw]}")
    print("  langgraph node (get_store) recalled:")
    for memory in report.langgraph_saw:
        print(f"    {memory['framework']:<11} {memory['text']!r} {memory['metadata']}")
    if report.problems:
        print(f"\nMEMORY LOST {len(report.problems)} things:")
        for problem in report.problems:
            print("  -", problem)
    else:
        print("every framework recalled what the others stored, metadata included")


# -- the switch, and the check that nothing was lost ---------------------------------------


@dataclass
class SwitchReport:
    workflow_id: str
    history: list[UnifiedWorkflowState]  # oldest first
    autogen_saw: int = 0
    llamaindex_saw: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def final(self) -> UnifiedWorkflowState:
        return self.history[-1]


def _framework_metadata(message: UnifiedMessage, framework: str) -> Any:
    """What a framework stored on a message; after a LangGraph hop it sits nested in
    the LangChain message's ``additional_kwargs["unified_metadata"]``."""
    if framework in message.metadata:
        return message.metadata[framework]
    nested = (message.metadata.get("langchain") or {}).get("additional_kwargs") or {}
    return (nested.get("unified_metadata") or {}).get(framework)


def _shape(message: UnifiedMessage) -> tuple[Any, ...]:
    return (
        message.role,
        message.content,
        message.tool_call_id,
        [(c.id, c.name, c.arguments) for c in message.tool_calls],
    )


def find_losses(history: list[UnifiedWorkflowState]) -> list[str]:
    """Every way a later checkpoint dropped or changed what an earlier one held."""
    problems: list[str] = []
    for before, after in itertools.pairwise(history):
        where = (
            f"{before.metadata.framework} step {before.metadata.step} -> "
            f"{after.metadata.framework} step {after.metadata.step}"
        )
        if len(after.messages) < len(before.messages):
            problems.append(f"{where}: {len(before.messages) - len(after.messages)} messages lost")
        for index, (old, new) in enumerate(zip(before.messages, after.messages, strict=False)):
            if _shape(old) != _shape(new):
                problems.append(f"{where}: message {index} changed: {_shape(old)} -> {_shape(new)}")
            if old.id is not None and new.id != old.id:
                problems.append(f"{where}: message {index} lost its id {old.id!r}")
            if old.name is not None and new.name != old.name:
                problems.append(f"{where}: message {index} lost its name {old.name!r}")
            for framework in FRAMEWORKS:
                if _framework_metadata(old, framework) != _framework_metadata(new, framework):
                    problems.append(f"{where}: message {index} lost its {framework} metadata")
        for key, value in before.context.items():
            if key not in after.context:
                problems.append(f"{where}: context {key!r} lost")
            elif after.metadata.framework != "langgraph" and after.context[key] != value:
                problems.append(f"{where}: context {key!r} changed")
        for framework, kept in before.framework_state.items():
            if framework not in after.framework_state:
                problems.append(f"{where}: framework_state[{framework!r}] lost")
            elif after.metadata.framework != framework and after.framework_state[framework] != kept:
                problems.append(f"{where}: framework_state[{framework!r}] changed by another framework")
    return problems


async def run_switch(saver: UnifiedCheckpointSaver, workflow_id: str) -> SwitchReport:
    """Run all five hops on ``workflow_id`` and check the thread's whole history."""
    await langgraph_turn(saver, workflow_id, "Plan a long weekend in Lisbon.")
    await langgraph_turn(saver, workflow_id, "Add a day in Sintra; what's the weather?")
    await crewai_turn(saver, workflow_id)
    autogen_saw = await autogen_turn(saver, workflow_id)
    llamaindex_saw = await llamaindex_turn(saver, workflow_id)
    before_final = await saver.aload_state(workflow_id)
    await langgraph_turn(saver, workflow_id, "LangGraph, wrap it all up.")

    newest_first: list[UnifiedWorkflowState] = await saver.ahistory(workflow_id)
    history = newest_first[::-1]
    report = SwitchReport(workflow_id, history, autogen_saw, llamaindex_saw)
    report.problems = find_losses(history)
    final = report.final
    assert before_final is not None
    view = final.context.get("final_view") or {}
    if view.get("messages") != len(before_final.messages) + 1:
        report.problems.append(
            f"the last LangGraph turn saw {view.get('messages')} messages, "
            f"expected {len(before_final.messages) + 1}"
        )
    for key in ("topic", "plan", "budget_eur", "summary"):
        if view.get(key) in (None, "", []):
            report.problems.append(f"the last LangGraph turn did not see context {key!r}")
    writers = {state.metadata.framework for state in history}
    missing = {"langgraph", *FRAMEWORKS} - writers
    if missing:
        report.problems.append(f"no checkpoint written by {sorted(missing)}")
    tool_messages = [m for m in final.messages if m.role == "tool"]
    if {m.tool_call_id for m in tool_messages} != {"call_weather_1", "call_budget_1"}:
        report.problems.append(f"tool results missing: {[m.tool_call_id for m in tool_messages]}")
    if autogen_saw < 10:
        report.problems.append(f"AutoGen's model saw only {autogen_saw} messages")
    if "[autogen] Budget" not in llamaindex_saw or "[crewai] Plan" not in llamaindex_saw:
        report.problems.append("LlamaIndex's model did not see the CrewAI and AutoGen turns")
    return report


def print_report(report: SwitchReport) -> None:
    print(f"workflow {report.workflow_id}: {len(report.history)} checkpoints, oldest first\n")
    print(f"{'step':>4}  {'framework':<11} {'msgs':>4}  latest message")
    for state in report.history:
        last = state.messages[-1] if state.messages else None
        text = "" if last is None else f"{last.role}: {last.content!s}".replace("\n", " ")
        print(
            f"{state.metadata.step:>4}  {state.metadata.framework:<11} "
            f"{len(state.messages):>4}  {text[:80]}"
        )
    final = report.final
    print("\nfinal conversation:")
    for message in final.messages:
        calls = f" calls {[c.name for c in message.tool_calls]}" if message.tool_calls else ""
        who = f"{message.role}{'/' + message.name if message.name else ''}"
        print(f"  {who:<28} {str(message.content).replace(chr(10), ' ')[:70]}{calls}")
    print("\nfinal context:", {k: v for k, v in final.context.items() if k != "final_view"})
    print("framework_state kept for:", sorted(final.framework_state))
    if report.problems:
        print(f"\nLOST {len(report.problems)} things:")
        for problem in report.problems:
            print("  -", problem)
    else:
        print("\nnothing lost: every message, id, tool call and context value came through")


async def main(url: str | None, workflow_id: str) -> int:
    # The replay model client warns about token counting on every call; it is only a stand-in.
    logging.getLogger("autogen_core.events").setLevel(logging.ERROR)
    saver = create_saver(url)
    async with saver:
        report = await run_switch(saver, workflow_id)
    print_report(report)
    store = create_store(url, index=memory_index())
    async with store:
        memory_report = await run_memory_switch(store, f"traveller-{workflow_id}")
    print_memory_report(memory_report)
    return 1 if report.problems or memory_report.problems else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--url",
        default=None,
        help="memory://, sqlite:///path, postgresql://..., redis://... "
        "(default: SQLite under ./.langgraph_unified_store/)",
    )
    parser.add_argument("--workflow-id", default=None, help="default: a new id")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    sys.exit(asyncio.run(main(args.url, args.workflow_id or f"trip-{uuid.uuid4().hex[:8]}")))
