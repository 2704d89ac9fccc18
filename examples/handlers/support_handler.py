"""An example team handler for `aiconfig-harness run --sdk python --handler ...`.

The Python worker gets the AI Config through the AI SDK itself, then calls this instead of
its built-in LLM call, so a team can load-test its own application code. Run it with
`PYTHONPATH=examples/handlers` and handler `support_handler:handle` (or give the file's
path: `examples/handlers/support_handler.py:handle`).
"""

from ldai.providers.types import LDAIMetrics
from ldai.tracker import FeedbackKind, TokenUsage


def build_prompt(variables):
    """The user's message, from the step's variables (what the application knows)."""
    company = variables.get("company", "our company")
    return f"I am a customer of {company}. How do I reset my password?"


def openai_metrics(response):
    """What the AI SDK tracks from an OpenAI answer: success and the token counts."""
    usage = response.usage
    tokens = None
    if usage is not None:
        tokens = TokenUsage(total=usage.total_tokens, input=usage.prompt_tokens,
                            output=usage.completion_tokens)
    return LDAIMetrics(success=True, tokens=tokens)


async def handle(ai_config, tracker, context, variables, llm):
    """One request of the support assistant.

    `ai_config` is what the AI SDK served, `tracker` its tracker for this run, `context` the
    LaunchDarkly context and `llm` an `openai.AsyncOpenAI` client (the worker has set the
    simulator's seed header on it). Raising fails the step.
    """
    if not ai_config.enabled:
        return  # a disabled config: the application answers without the LLM
    messages = [{"role": m.role, "content": m.content} for m in ai_config.messages or []]
    messages.append({"role": "user", "content": build_prompt(variables)})

    # The AI SDK times the call and tracks duration, success (or error) and tokens.
    response = await tracker.track_metrics_of_async(
        openai_metrics,
        lambda: llm.chat.completions.create(model=ai_config.model.name, messages=messages),
    )
    if response.choices and response.choices[0].message.content:
        # The application's own judgement of the answer, as a user's thumbs-up would be.
        tracker.track_feedback({"kind": FeedbackKind.Positive})
