"""Python: the server SDK and the AI SDK against mock-ld (`mock-ld --data
scenarios/demo-data.yaml`). FDv1 streaming by default; `--fdv2` opts into FDv2."""

import os
import sys

from ldai.client import LDAIClient
from ldai.tracker import TokenUsage
from ldclient import Context, LDClient
from ldclient import datasystem
from ldclient.config import Config

MOCK_LD = os.environ.get("MOCK_LD_URL", "http://127.0.0.1:8765")
SDK_KEY = os.environ.get("MOCK_LD_SDK_KEY", "sdk-default-test")

fdv2 = datasystem.default().build() if "--fdv2" in sys.argv else None
config = Config(SDK_KEY, base_uri=MOCK_LD, stream_uri=MOCK_LD, events_uri=MOCK_LD,
                datasystem_config=fdv2)
client = LDClient(config, start_wait=5)
if not client.is_initialized():
    sys.exit(f"the SDK did not initialize against {MOCK_LD}")

ai = LDAIClient(client)
context = Context.builder("qa-alice").set("company", "Acme").build()
assistant = ai.completion_config("support-assistant", context)
print(f"support-assistant for qa-alice: {assistant.model.name} ({assistant.provider.name})")

tracker = assistant.create_tracker()  # after your LLM call, what it took and used:
tracker.track_duration(420)
tracker.track_tokens(TokenUsage(total=30, input=10, output=20))
tracker.track_success()
client.flush()
client.close()
