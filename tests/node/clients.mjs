// The gateway's Responses API judged by openai-node and the Vercel AI SDK's default `openai(model)` provider.
// Usage: node clients.mjs <gateway url> <gateway key> <route> [cut]
// Prints one JSON object with what each client saw; tests/integration/test_dialect_node.py asserts on it.
// With "cut", only streams are run (the test makes every model of the route cut its stream).
import OpenAI from "openai";
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, jsonSchema, stepCountIs, streamText, tool } from "ai";

const [url, key, route, mode] = process.argv.slice(2);
const out = {};
const client = new OpenAI({ baseURL: url + "/v1", apiKey: key, maxRetries: 0, timeout: 15000 });
const weather = {
  type: "function", name: "get_weather", description: "Weather by city",
  parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
};

async function step(name, fn) {
  try {
    out[name] = await fn();
  } catch (e) {
    out[name] = { error: String(e && e.message ? e.message : e), status: e && e.status };
  }
}

const provider = createOpenAI({ baseURL: url + "/v1", apiKey: key });

if (mode === "cut") {
  await step("cut_raw", async () => {
    const s = await client.responses.create({ model: route, input: "Hello there", stream: true });
    const events = [];
    for await (const ev of s) events.push(ev);
    const last = events[events.length - 1];
    return { types: events.map((e) => e.type), status: last.response && last.response.status,
             code: last.response && last.response.error && last.response.error.code };
  });
  await step("cut_helper", async () => {
    const final = await client.responses.stream({ model: route, input: "Hello there" }).finalResponse();
    return { completed: final.status };
  });
  await step("cut_ai_stream", async () => {
    const r = streamText({ model: provider(route), prompt: "Hello there", maxRetries: 0, onError: () => {} });
    let text = "";
    for await (const t of r.textStream) text += t;
    return { text, finishReason: await r.finishReason };
  });
  console.log(JSON.stringify(out));
  process.exit(0);
}

await step("create", async () => {
  const r = await client.responses.create({ model: route, input: "Hello there", instructions: "Be terse." });
  return { text: r.output_text, model: r.model, status: r.status, usage: r.usage };
});

await step("stream_raw", async () => {
  const s = await client.responses.create({ model: route, input: "Hello there", stream: true });
  const types = [];
  for await (const ev of s) types.push(ev.type);
  return { types };
});

await step("stream_helper", async () => {
  const s = client.responses.stream({ model: route, input: "Hello there" });
  let deltas = "";
  s.on("response.output_text.delta", (ev) => { deltas += ev.delta; });
  const final = await s.finalResponse();
  return { text: final.output_text, deltas };
});

await step("function_call", async () => {
  const first = await client.responses.create({ model: route, input: "Weather in Paris?", tools: [weather],
                                                 tool_choice: "required" });
  const call = first.output.find((o) => o.type === "function_call");
  const second = await client.responses.create({
    model: route, tools: [weather],
    input: [{ role: "user", content: "Weather in Paris?" },
            { type: "function_call", call_id: call.call_id, name: call.name, arguments: call.arguments },
            { type: "function_call_output", call_id: call.call_id, output: "18C, sunny" }],
  });
  return { name: call.name, arguments: JSON.parse(call.arguments), text: second.output_text };
});

await step("json_schema", async () => {
  const r = await client.responses.create({
    model: route, input: "verdict?",
    text: { format: { type: "json_schema", name: "verdict", strict: true, schema: {
      type: "object", properties: { model: { type: "string" }, answer: { type: "string" } },
      required: ["model", "answer"], additionalProperties: false } } },
  });
  return { parsed: JSON.parse(r.output_text) };
});

await step("ai_generate", async () => {
  const r = await generateText({ model: provider(route), prompt: "Hello there", maxRetries: 0 });
  // A follow-up turn replays the earlier answer the AI SDK way: as an item_reference (store defaults to true).
  const again = await generateText({ model: provider(route), maxRetries: 0,
                                     messages: [{ role: "user", content: "Hello there" }, ...r.response.messages,
                                                { role: "user", content: "And again" }] });
  return { text: r.text, finishReason: r.finishReason, modelId: r.response.modelId, again: again.text,
           usage: r.usage };
});

await step("ai_stream", async () => {
  const r = streamText({ model: provider(route), prompt: "Hello there", maxRetries: 0 });
  let text = "";
  for await (const t of r.textStream) text += t;
  return { text, finishReason: await r.finishReason };
});

await step("ai_tools", async () => {
  const r = await generateText({
    model: provider(route), prompt: "Weather in Paris?", maxRetries: 0, stopWhen: stepCountIs(2),
    tools: { get_weather: tool({ description: "Weather by city",
                                 inputSchema: jsonSchema({ type: "object", properties: { location: { type: "string" } },
                                                           required: ["location"] }),
                                 execute: async ({ location }) => `18C in ${location}` }) },
  });
  return { steps: r.steps.length, calls: r.steps[0].toolCalls.map((c) => [c.toolName, c.input]), text: r.text };
});

console.log(JSON.stringify(out));
