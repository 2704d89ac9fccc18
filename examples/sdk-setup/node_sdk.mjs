// Node: the server SDK and the AI SDK against mock-ld (`mock-ld --data
// scenarios/demo-data.yaml`). FDv1 streaming by default; `--fdv2` opts into FDv2.
import { basicLogger, init } from '@launchdarkly/node-server-sdk';
import { initAi } from '@launchdarkly/server-sdk-ai';

const MOCK_LD = process.env.MOCK_LD_URL ?? 'http://127.0.0.1:8765';
const SDK_KEY = process.env.MOCK_LD_SDK_KEY ?? 'sdk-default-test';

const fdv2 = process.argv.includes('--fdv2')
  ? { dataSystem: { dataSource: { dataSourceOptionsType: 'standard' } } } // poll, then stream
  : {};
const client = init(SDK_KEY, {
  baseUri: MOCK_LD, streamUri: MOCK_LD, eventsUri: MOCK_LD, logger: basicLogger({ level: 'warn' }),
  ...fdv2,
});
await client.waitForInitialization({ timeout: 5 });

const ai = initAi(client);
const context = { kind: 'user', key: 'qa-alice', company: 'Acme' };
const assistant = await ai.completionConfig('support-assistant', context);
console.log(`support-assistant for qa-alice: ${assistant.model.name} (${assistant.provider.name})`);

// After your LLM call, what it took and used:
assistant.tracker.trackDuration(420);
assistant.tracker.trackTokens({ total: 30, input: 10, output: 20 });
assistant.tracker.trackSuccess();
await client.flush();
client.close();
