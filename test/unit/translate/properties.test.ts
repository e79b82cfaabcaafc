import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProxyError } from '../../../src/proxy/errors.js';
import { chatToMessages } from '../../../src/proxy/translate/chat-to-messages/index.js';
import { messagesToChat } from '../../../src/proxy/translate/messages-to-chat/index.js';
import { accumulateChat, accumulateMessage, cut, translateAll } from './support.js';

/** Properties of the two directions together: what translates both ways comes back as it was, streams say what JSON says. */
const limits = { defaultMaxTokens: 4096 };
const text = fc.string({ minLength: 1, maxLength: 12 });
const name = fc.stringMatching(/^[a-z][a-z_]{0,9}$/);
const toolId = fc.stringMatching(/^toolu_[A-Za-z0-9]{1,8}$/);
const input = fc.dictionary(fc.string({ maxLength: 5 }), fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean()), { maxKeys: 3 });
const fraction = fc.integer({ min: 0, max: 100 }).map((n) => n / 100);

const userPart = fc.oneof(
  text.map((t) => ({ type: 'text', text: t })),
  fc.record({ type: fc.constant('image'), source: fc.record({ type: fc.constant('base64'), media_type: fc.constantFrom('image/png', 'image/jpeg'), data: fc.base64String({ minLength: 4, maxLength: 16 }) }) }),
  fc.record({ type: fc.constant('image'), source: fc.record({ type: fc.constant('url'), url: fc.webUrl({ validSchemes: ['https'] }) }) }),
);
const toolUse = fc.record({ type: fc.constant('tool_use'), id: toolId, name, input });
const assistantTurn = fc.tuple(fc.option(text, { nil: undefined }), fc.uniqueArray(toolUse, { maxLength: 2, selector: (t) => t.id }))
  .filter(([t, uses]) => t !== undefined || uses.length > 0)
  .map(([t, uses]) => ({ role: 'assistant', content: [...(t === undefined ? [] : [{ type: 'text', text: t }]), ...uses] }));

/** A conversation as Anthropic takes it: user and assistant alternate, each tool_use answered first thing in the next user turn. */
const conversation = fc.array(fc.tuple(fc.array(userPart, { minLength: 1, maxLength: 3 }), assistantTurn, fc.array(fc.string({ maxLength: 10 }), { minLength: 2, maxLength: 2 })), { maxLength: 3 })
  .chain((exchanges) => fc.array(userPart, { minLength: 1, maxLength: 2 }).map((last) => {
    const messages: unknown[] = [];
    let pending: { id: string }[] = [];
    for (const [parts, assistant, results] of exchanges) {
      messages.push({ role: 'user', content: [...pending.map((u, i) => ({ type: 'tool_result', tool_use_id: u.id, content: results[i % 2] })), ...parts] });
      messages.push(assistant);
      pending = assistant.content.filter((b) => b.type === 'tool_use') as { id: string }[];
    }
    messages.push({ role: 'user', content: [...pending.map((u) => ({ type: 'tool_result', tool_use_id: u.id, content: 'done' })), ...last] });
    return messages;
  }));

const tools = fc.uniqueArray(fc.record({ name, description: fc.option(text, { nil: undefined }), input_schema: fc.record({ type: fc.constant('object'), properties: fc.dictionary(name, fc.constant({ type: 'string' }), { maxKeys: 2 }) }) }, { requiredKeys: ['name', 'input_schema'] }), { maxLength: 3, selector: (t) => t.name });

const messagesRequest = fc.record({
  model: fc.constant('m'),
  max_tokens: fc.integer({ min: 1, max: 100_000 }),
  system: fc.option(text.map((t) => [{ type: 'text', text: t }]), { nil: undefined }),
  messages: conversation,
  temperature: fc.option(fraction, { nil: undefined }),
  top_p: fc.option(fraction, { nil: undefined }),
  stop_sequences: fc.option(fc.array(text, { minLength: 1, maxLength: 4 }), { nil: undefined }),
  stream: fc.option(fc.constant(true), { nil: undefined }),
  tools_and_choice: fc.option(tools.filter((t) => t.length > 0).chain((t) => fc.tuple(fc.constant(t), fc.option(
    fc.tuple(fc.oneof(fc.constantFrom({ type: 'auto' }, { type: 'any' }, { type: 'none' }), fc.constantFrom(...t.map((x) => ({ type: 'tool', name: x.name })))), fc.boolean())
      .map(([choice, serial]) => (serial ? { ...choice, disable_parallel_tool_use: true } : choice)), { nil: undefined }))), { nil: undefined }),
}, { requiredKeys: ['model', 'max_tokens', 'messages'] }).map(({ tools_and_choice, ...r }) => {
  const out: Record<string, unknown> = Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined));
  if (tools_and_choice) {
    out.tools = tools_and_choice[0].map((t) => Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined)));
    if (tools_and_choice[1]) out.tool_choice = tools_and_choice[1];
  }
  return out;
});

describe('translation properties', () => {
  it('an Anthropic request translated to OpenAI Chat and back is the request it was', () => {
    fc.assert(fc.property(messagesRequest, (request) => {
      const chat = messagesToChat.request(request, limits).body;
      expect(chatToMessages.request(chat, limits).body).toEqual(request);
    }), { numRuns: 300 });
  });

  const anthropicMessage = fc.record({
    id: fc.stringMatching(/^msg_[A-Za-z0-9]{4,10}$/),
    model: fc.constant('claude-haiku-4-5'),
    text: fc.option(fc.string({ minLength: 1, maxLength: 60 }), { nil: undefined }),
    uses: fc.uniqueArray(toolUse, { maxLength: 3, selector: (t) => t.id }),
    stop_reason: fc.constantFrom('end_turn', 'max_tokens', 'tool_use', 'refusal'),
    usage: fc.record({ input_tokens: fc.nat(100_000), cache_creation_input_tokens: fc.constant(0), cache_read_input_tokens: fc.nat(100_000), output_tokens: fc.nat(64_000) }),
  }).map(({ text: t, uses, ...m }) => ({ ...m, type: 'message', role: 'assistant', stop_sequence: null, content: [...(t === undefined ? [] : [{ type: 'text', text: t }]), ...uses] }));

  it('an Anthropic response translated to a chat.completion and back is the response it was', () => {
    fc.assert(fc.property(anthropicMessage, (message) => {
      expect(messagesToChat.response(chatToMessages.response(message))).toEqual(message);
    }), { numRuns: 300 });
  });

  const cuts = fc.array(fc.nat(80), { maxLength: 6 });

  it('an Anthropic stream, cut anywhere, translates to chunks that assemble into the translated JSON answer', () => {
    fc.assert(fc.property(anthropicMessage, fc.array(cuts, { minLength: 4, maxLength: 4 }), fc.boolean(), (message, cutsOf, thinking) => {
      const ev = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}`;
      const upstream = [ev('message_start', { message: { ...message, content: [], stop_reason: null, usage: { ...message.usage, output_tokens: 1 } } }), ev('ping', {})];
      const blocks = [...(thinking ? [{ type: 'thinking', thinking: 'hmm, let me see' }] : []), ...message.content] as any[];
      blocks.forEach((block, index) => {
        if (block.type === 'tool_use') {
          upstream.push(ev('content_block_start', { index, content_block: { ...block, input: {} } }));
          for (const piece of cut(JSON.stringify(block.input), cutsOf[index % 4]!)) upstream.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: piece } }));
        } else if (block.type === 'text') {
          upstream.push(ev('content_block_start', { index, content_block: { type: 'text', text: '' } }));
          for (const piece of cut(block.text, cutsOf[index % 4]!)) upstream.push(ev('content_block_delta', { index, delta: { type: 'text_delta', text: piece } }));
        } else {
          upstream.push(ev('content_block_start', { index, content_block: { type: 'thinking', thinking: '' } }));
          upstream.push(ev('content_block_delta', { index, delta: { type: 'thinking_delta', thinking: block.thinking } }), ev('content_block_delta', { index, delta: { type: 'signature_delta', signature: 'EqQB' } }));
        }
        upstream.push(ev('content_block_stop', { index }));
      });
      upstream.push(ev('message_delta', { delta: { stop_reason: message.stop_reason, stop_sequence: null }, usage: { output_tokens: message.usage.output_tokens } }), ev('message_stop', {}));

      const streamed = accumulateChat(translateAll(chatToMessages.stream({ clientWantsUsage: true }), upstream));
      const json = chatToMessages.response(message) as any;
      const reply = json.choices[0].message;
      expect(streamed.done).toBe(true);
      expect(streamed.content).toEqual(reply.content);
      expect(streamed.tool_calls).toEqual(reply.tool_calls ?? []);
      expect(streamed.finish_reason).toBe(json.choices[0].finish_reason);
      expect(streamed.usage).toEqual(json.usage);
    }), { numRuns: 300 });
  });

  const completion = fc.record({
    id: fc.stringMatching(/^chatcmpl-[A-Za-z0-9]{4,10}$/),
    content: fc.option(fc.string({ minLength: 1, maxLength: 60 }), { nil: null }),
    calls: fc.uniqueArray(fc.record({ id: fc.stringMatching(/^call_[A-Za-z0-9]{4,8}$/), name, input }), { maxLength: 3, selector: (c) => c.id }),
    finish: fc.constantFrom('stop', 'length', 'tool_calls', 'content_filter'),
    prompt: fc.nat(100_000),
    cached: fc.nat(100_000),
    completion: fc.nat(64_000),
  }).map((c) => ({
    id: c.id, object: 'chat.completion', created: 1, model: 'gpt-4o-mini',
    choices: [{ index: 0, logprobs: null, finish_reason: c.finish, message: { role: 'assistant', content: c.content, refusal: null,
      ...(c.calls.length > 0 ? { tool_calls: c.calls.map((t) => ({ id: t.id, type: 'function', function: { name: t.name, arguments: JSON.stringify(t.input) } })) } : {}) } }],
    usage: { prompt_tokens: c.prompt + c.cached, completion_tokens: c.completion, total_tokens: c.prompt + c.cached + c.completion, prompt_tokens_details: { cached_tokens: c.cached } },
  }));

  it('an OpenAI stream, cut anywhere, translates to an Anthropic event sequence that assembles into the translated JSON answer', () => {
    fc.assert(fc.property(completion, fc.array(cuts, { minLength: 4, maxLength: 4 }), (c, cutsOf) => {
      const head = { id: c.id, object: 'chat.completion.chunk', created: 1, model: c.model };
      const chunk = (delta: object, finish: string | null = null) => `data: ${JSON.stringify({ ...head, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], usage: null })}`;
      const message = c.choices[0]!.message;
      const upstream = [chunk({ role: 'assistant', content: '', refusal: null })];
      if (message.content) for (const piece of cut(message.content, cutsOf[0]!)) upstream.push(chunk({ content: piece }));
      (message.tool_calls ?? []).forEach((call, index) => {
        upstream.push(chunk({ tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } }] }));
        for (const piece of cut(call.function.arguments, cutsOf[(index + 1) % 4]!)) upstream.push(chunk({ tool_calls: [{ index, function: { arguments: piece } }] }));
      });
      upstream.push(chunk({}, c.choices[0]!.finish_reason), `data: ${JSON.stringify({ ...head, choices: [], usage: c.usage })}`, 'data: [DONE]');

      const streamed = accumulateMessage(translateAll(messagesToChat.stream({ clientWantsUsage: true }), upstream));
      const { stopped, ...assembled } = streamed;
      expect(stopped).toBe(true);
      expect(assembled).toEqual(messagesToChat.response(c));
    }), { numRuns: 300 });
  });

  const params = ['stream', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'stop', 'stop_sequences', 'tools', 'tool_choice', 'response_format', 'reasoning_effort', 'thinking', 'output_config', 'system', 'parallel_tool_calls', 'n', 'metadata', 'user'];
  const anyBody = fc.record({
    model: fc.constant('m'),
    messages: fc.array(fc.oneof(fc.jsonValue(), fc.record({ role: fc.constantFrom('user', 'assistant', 'system', 'tool', 'developer'), content: fc.jsonValue(), tool_calls: fc.jsonValue(), tool_call_id: fc.jsonValue() }, { requiredKeys: ['role'] })), { maxLength: 4 }),
    extra: fc.dictionary(fc.constantFrom(...params), fc.jsonValue(), { maxKeys: 4 }),
  }).map(({ extra, ...b }) => ({ ...extra, ...b }));

  it('refuses any malformed body with a 400, in both directions, never with another error', () => {
    fc.assert(fc.property(anyBody, (body) => {
      for (const translator of [chatToMessages, messagesToChat]) {
        try {
          translator.request(structuredClone(body), limits);
        } catch (err) {
          expect(err).toBeInstanceOf(ProxyError);
          expect((err as ProxyError).status).toBe(400);
        }
      }
    }), { numRuns: 1000 });
  });
});
