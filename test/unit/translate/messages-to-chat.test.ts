import { describe, expect, it } from 'vitest';
import { messagesToChat } from '../../../src/proxy/translate/messages-to-chat/index.js';
import { accumulateMessage, events, refusalOf, translateAll } from './support.js';

/**
 * Anthropic Messages in, OpenAI Chat upstream: golden pairs from the providers' API references (a Claude Code style
 * request with tools, tool results and cache_control; the Chat Completions response and its streamed chunks with
 * tool_calls deltas, as the function-calling guide shows them), translated without a network.
 */
const limits = { defaultMaxTokens: 0 };
const translate = (body: Record<string, unknown>) => messagesToChat.request(body, limits);
const refusal = (body: Record<string, unknown>) => refusalOf(() => translate(body));

describe('messages → chat: requests', () => {
  it('translates a Claude Code turn: system blocks, cache_control, tools, a tool result with an image', () => {
    const { body, maxOutputTokens } = translate({
      model: 'gpt-4.1',
      max_tokens: 32000,
      stream: true,
      system: [{ type: 'text', text: 'You are Claude Code.' }, { type: 'text', text: 'Be concise.', cache_control: { type: 'ephemeral' } }],
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Look at the screenshot', cache_control: { type: 'ephemeral' } }] },
        { role: 'assistant', content: [
          { type: 'thinking', thinking: 'I should read it.', signature: 'EqQB' },
          { type: 'text', text: 'Reading it.' },
          { type: 'tool_use', id: 'toolu_01', name: 'Read', input: { file_path: 'screenshots/shot.png' } },
        ] },
        { role: 'user', content: [
          { type: 'tool_result', tool_use_id: 'toolu_01', content: [{ type: 'text', text: 'An image:' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } }] },
          { type: 'text', text: 'What do you see?' },
        ] },
      ],
      tools: [{ name: 'Read', description: 'Reads a file', input_schema: { type: 'object', properties: { file_path: { type: 'string' } }, required: ['file_path'] } }],
      tool_choice: { type: 'auto' },
      metadata: { user_id: 'user_abc_account__session_123' },
      temperature: 1,
      stop_sequences: ['</done>'],
    });
    expect(maxOutputTokens).toBe(32000);
    expect(body).toEqual({
      model: 'gpt-4.1',
      messages: [
        { role: 'system', content: 'You are Claude Code.\nBe concise.' },
        { role: 'user', content: [{ type: 'text', text: 'Look at the screenshot' }] },
        { role: 'assistant', content: 'Reading it.', tool_calls: [{ id: 'toolu_01', type: 'function', function: { name: 'Read', arguments: '{"file_path":"screenshots/shot.png"}' } }] },
        { role: 'tool', tool_call_id: 'toolu_01', content: 'An image:' },
        { role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }, { type: 'text', text: 'What do you see?' }] },
      ],
      max_completion_tokens: 32000,
      stream: true,
      tools: [{ type: 'function', function: { name: 'Read', description: 'Reads a file', parameters: { type: 'object', properties: { file_path: { type: 'string' } }, required: ['file_path'] } } }],
      tool_choice: 'auto',
      temperature: 1,
      stop: ['</done>'],
    });
  });

  it('maps tool_choice, thinking, output_config and documents', () => {
    const base = { model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] };
    expect(translate({ ...base, tool_choice: { type: 'any', disable_parallel_tool_use: true } }).body).toMatchObject({ tool_choice: 'required', parallel_tool_calls: false });
    expect(translate({ ...base, tool_choice: { type: 'tool', name: 'f' } }).body.tool_choice).toEqual({ type: 'function', function: { name: 'f' } });
    expect(translate({ ...base, tool_choice: { type: 'none' } }).body.tool_choice).toBe('none');
    expect(translate({ ...base, thinking: { type: 'enabled', budget_tokens: 1024 } }).body.reasoning_effort).toBe('low');
    expect(translate({ ...base, thinking: { type: 'enabled', budget_tokens: 10000 } }).body.reasoning_effort).toBe('medium');
    expect(translate({ ...base, thinking: { type: 'enabled', budget_tokens: 32000 } }).body.reasoning_effort).toBe('high');
    expect(translate({ ...base, thinking: { type: 'disabled' } }).body.reasoning_effort).toBeUndefined();
    const schema = { type: 'object', properties: {}, additionalProperties: false };
    expect(translate({ ...base, output_config: { format: { type: 'json_schema', schema }, effort: 'high' } }).body).toMatchObject({
      response_format: { type: 'json_schema', json_schema: { name: 'output', schema, strict: true } }, reasoning_effort: 'high',
    });
    const doc = translate({ ...base, messages: [{ role: 'user', content: [
      { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0x' }, title: 'spec.pdf' },
      { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'plain words' } },
      { type: 'image', source: { type: 'url', url: 'https://example.com/cat.png' } },
    ] }] }).body.messages as unknown[];
    expect(doc).toEqual([{ role: 'user', content: [
      { type: 'file', file: { filename: 'spec.pdf', file_data: 'data:application/pdf;base64,JVBERi0x' } },
      { type: 'text', text: 'plain words' },
      { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } },
    ] }]);
  });

  it('accepts the context_management Claude Code sends (clearing thinking, which OpenAI models never get)', () => {
    const base = { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] };
    expect(translate({ ...base, context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] } }).body).toEqual({ model: 'm', max_completion_tokens: 5, messages: [{ role: 'user', content: [{ type: 'text', text: 'x' }] }] });
    expect(translate({ ...base, context_management: { edits: [] } }).body.messages).toHaveLength(1);
  });

  it('keeps a system message inside the conversation where it is (Claude Code sends them after a user turn)', () => {
    const { body } = translate({ model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'x' }, { role: 'system', content: [{ type: 'text', text: 'Now be brief.' }] }] });
    expect(body.messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'x' }] }, { role: 'system', content: 'Now be brief.' }]);
  });

  it('tells the model a tool result was an error', () => {
    const { body } = translate({ model: 'm', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: 'ENOENT', is_error: true }] }] });
    expect(body.messages).toEqual([{ role: 'tool', tool_call_id: 't', content: 'Error: ENOENT' }]);
  });

  it.each([
    [{ top_k: 40 }, /^top_k: /],
    [{ stop_sequences: ['a', 'b', 'c', 'd', 'e'] }, /^stop_sequences: /],
    [{ tools: [{ type: 'web_search_20250305', name: 'web_search' }] }, /^tools\[0\]\.type: /],
    [{ tools: [{ type: 'bash_20250124', name: 'bash' }] }, /^tools\[0\]\.type: /],
    [{ mcp_servers: [{ type: 'url', url: 'https://mcp.example.com', name: 'x' }] }, /^mcp_servers: /],
    [{ container: 'c' }, /^container: /],
    [{ context_management: { edits: [{ type: 'clear_tool_uses_20250919' }] } }, /^context_management\.edits\[0\]: /],
    [{ service_tier: 'standard_only' }, /^service_tier: /],
    [{ output_config: { effort: 'max' } }, /^output_config\.effort: /],
    [{ messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'file', file_id: 'file_1' } }] }] }, /^messages\[0\]\.content\[0\]\.source\.type: /],
    [{ messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'url', url: 'https://x/a.pdf' } }] }] }, /^messages\[0\]\.content\[0\]\.source: /],
    [{ messages: [{ role: 'user', content: [{ type: 'search_result', source: 's', title: 't', content: [] }] }] }, /^messages\[0\]\.content\[0\]\.type: /],
    [{ messages: [{ role: 'assistant', content: [{ type: 'server_tool_use', id: 's', name: 'web_search', input: {} }] }] }, /^messages\[0\]\.content\[0\]\.type: /],
  ])('refuses %j with a 400 naming it', (extra, message) => {
    const err = refusal({ model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'x' }], ...extra });
    expect(err.status).toBe(400);
    expect(err.message).toMatch(message);
  });
});

describe('messages → chat: responses', () => {
  it('translates the Chat Completions example response into a message', () => {
    expect(messagesToChat.response({
      id: 'chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT', object: 'chat.completion', created: 1741569952, model: 'gpt-4.1-2025-04-14',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hello! How can I assist you today?', refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: 19, completion_tokens: 10, total_tokens: 29, prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 } },
      service_tier: 'default',
    })).toEqual({
      id: 'chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT', type: 'message', role: 'assistant', model: 'gpt-4.1-2025-04-14',
      content: [{ type: 'text', text: 'Hello! How can I assist you today?' }], stop_reason: 'end_turn', stop_sequence: null,
      usage: { input_tokens: 19, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 10 },
    });
  });

  it('translates the function-calling example response (tool_calls), cached tokens and finish reasons', () => {
    const res = messagesToChat.response({
      id: 'chatcmpl-1', model: 'gpt-4.1',
      choices: [{ index: 0, finish_reason: 'tool_calls', message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_12345xyz', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris, France"}' } }] } }],
      usage: { prompt_tokens: 2006, completion_tokens: 300, prompt_tokens_details: { cached_tokens: 1920 } },
    });
    expect(res).toMatchObject({ stop_reason: 'tool_use', content: [{ type: 'tool_use', id: 'call_12345xyz', name: 'get_weather', input: { location: 'Paris, France' } }],
      usage: { input_tokens: 86, cache_read_input_tokens: 1920, output_tokens: 300 } });
    const finish = (f: string) => messagesToChat.response({ choices: [{ finish_reason: f, message: { content: 'x' } }] }).stop_reason;
    expect(['stop', 'length', 'content_filter', 'function_call'].map(finish)).toEqual(['end_turn', 'max_tokens', 'refusal', 'tool_use']);
    expect(messagesToChat.response({ choices: [{ finish_reason: 'stop', message: { content: null, refusal: 'I can’t help with that.' } }] }).content).toEqual([{ type: 'text', text: 'I can’t help with that.' }]);
  });

  it('maps an OpenAI error body to the Anthropic error format, by status', () => {
    const body = Buffer.from(JSON.stringify({ error: { message: 'Rate limit reached for gpt-4.1', type: 'requests', param: null, code: 'rate_limit_exceeded' } }));
    expect(messagesToChat.error(429, body)).toEqual({ type: 'error', error: { type: 'rate_limit_error', message: 'Rate limit reached for gpt-4.1' } });
    expect(messagesToChat.error(400, Buffer.from('{"error":{"message":"bad"}}'))).toEqual({ type: 'error', error: { type: 'invalid_request_error', message: 'bad' } });
    expect(messagesToChat.error(404, Buffer.from(''))).toMatchObject({ error: { type: 'not_found_error' } });
  });
});

const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-123', object: 'chat.completion.chunk', created: 1694268190, model: 'gpt-4o-mini', system_fingerprint: 'fp_44709d6fcb', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}`;

describe('messages → chat: streams', () => {
  it('translates streamed tool_calls deltas (the function-calling guide’s sequence) into tool_use and input_json_delta', () => {
    const upstream = [
      chunk({ role: 'assistant', content: null }),
      chunk({ tool_calls: [{ index: 0, id: 'call_DdmO9pD3xa9XTPNJ32zg2hcA', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: 'location' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '":"Paris, France"}' } }] }),
      chunk({}, 'tool_calls'),
      `data: ${JSON.stringify({ id: 'chatcmpl-123', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 82, completion_tokens: 18, total_tokens: 100, prompt_tokens_details: { cached_tokens: 64 } } })}`,
      'data: [DONE]',
    ];
    const out = translateAll(messagesToChat.stream({ clientWantsUsage: true }), upstream);
    expect(out.map((e) => JSON.parse(e.slice(e.indexOf('data: ') + 6)).type)).toEqual([
      'message_start', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop',
    ]);
    expect(accumulateMessage(out)).toEqual({
      id: 'chatcmpl-123', type: 'message', role: 'assistant', model: 'gpt-4o-mini', stop_reason: 'tool_use', stop_sequence: null, stopped: true,
      content: [{ type: 'tool_use', id: 'call_DdmO9pD3xa9XTPNJ32zg2hcA', name: 'get_weather', input: { location: 'Paris, France' } }],
      usage: { input_tokens: 18, cache_creation_input_tokens: 0, cache_read_input_tokens: 64, output_tokens: 18 },
    });
  });

  it('opens a text block for content and closes it before a tool call', () => {
    const out = translateAll(messagesToChat.stream({ clientWantsUsage: true }), [
      chunk({ role: 'assistant', content: '' }), chunk({ content: 'Let me look.' }),
      chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'ls', arguments: '{}' } }] }), chunk({}, 'tool_calls'), 'data: [DONE]',
    ]);
    expect(accumulateMessage(out).content).toEqual([{ type: 'text', text: 'Let me look.' }, { type: 'tool_use', id: 'call_1', name: 'ls', input: {} }]);
  });

  it('completes the event sequence of a stream that ends without [DONE], and adds nothing after an error', () => {
    const translator = messagesToChat.stream({ clientWantsUsage: true });
    const out = translateAll(translator, [chunk({ role: 'assistant', content: 'Hi' }), chunk({}, 'stop')]).concat(events(translator.end()));
    expect(accumulateMessage(out)).toMatchObject({ content: [{ type: 'text', text: 'Hi' }], stop_reason: 'end_turn', stopped: true });
    expect(translator.end()).toBe('');
    const failing = messagesToChat.stream({ clientWantsUsage: true });
    failing.event(chunk({ content: 'x' }));
    failing.event('data: {"error":{"message":"boom"}}');
    expect(failing.end()).toBe('');
  });

  it('turns an error chunk into an Anthropic error event', () => {
    const [event] = events(messagesToChat.stream({ clientWantsUsage: true }).event('data: {"error":{"message":"The server had an error","type":"server_error"}}'));
    expect(event).toBe('event: error\ndata: {"type":"error","error":{"type":"api_error","message":"The server had an error"}}');
  });
});
