// An example team handler for `aiconfig-harness run --sdk node --handler
// /abs/path/examples/handlers/support_handler.mjs#handle`: the harness's Node worker calls it
// for each step whose AI Config is enabled, in place of its built-in LLM call and tracking,
// so the load runs the team's own code against the real SDKs.
//
//   aiConfig  the AI SDK's config (model, messages, enabled), already evaluated and timed
//   tracker   that config's tracker: tracking is the handler's business, as in the app
//   context   the LaunchDarkly context, variables the step's template variables
//   llm       an `openai` client pointed at the harness's LLM endpoint, with the request's
//             X-Mock-Seed header already set
//
// Throwing fails the step. The worker counts every event the tracker sends.

export async function handle({ aiConfig, tracker, context, variables, llm }) {
  const messages = [
    ...(aiConfig.messages ?? []),
    // A team's own touch: the product name in the prompt, the user's question after it.
    { role: 'user', content: `(${variables.company ?? 'our product'}) ${questionFor(context)}` },
  ];
  // The AI SDK's OpenAI helper tracks duration, success or error, and tokens.
  const completion = await tracker.trackOpenAIMetrics(() =>
    llm.chat.completions.create({ model: aiConfig.model?.name ?? 'gpt-4o-mini', messages }),
  );
  const answer = completion.choices[0]?.message?.content ?? '';
  // An application would show `answer`; here an empty one counts as bad feedback.
  if (answer.length === 0) tracker.trackFeedback({ kind: 'negative' });
}

/** The question a user of this tier asks (a real app would take it from the request). */
function questionFor(context) {
  const tier = context.tier ?? context.user?.tier;
  return tier === 'premium' ? 'Can I get a refund for my last invoice?' : 'How do I reset my password?';
}
