import { describe, expect, it } from 'vitest';
import { chatToMessages } from '../../../src/proxy/translate/chat-to-messages/index.js';
import { accumulateChat, events, refusalOf, translateAll } from './support.js';

/**
 * OpenAI Chat in, Anthropic Messages upstream: golden pairs built from the providers' API references (the Chat
 * Completions request and chunk objects; the Messages response and the "Streaming Messages" event sequence with a
 * tool_use block), translated without a network.
 */
const limits = { defaultMaxTokens: 64_000 };
const translate = (body: Record<string, unknown>) => chatToMessages.request(body, limits);
const refusal = (body: Record<string, unknown>) => refusalOf(() => translate(body));

describe('chat → messages: requests', () => {
  it('translates the function-calling example: system, developer, tools, tool_choice, stop, sampling, caps', () => {
    const { body, maxOutputTokens } = translate({
      model: 'claude-sonnet-4-5',
      messages: [
        { role: 'system', content: 'You are a helpful assistant.' },
        { role: 'developer', content: [{ type: 'text', text: 'Answer in metric units.' }] },
        { role: 'user', content: 'What is the weather like in Paris today?' },
      ],
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Get current temperature for a given location.', parameters: { type: 'object', properties: { location: { type: 'string', description: 'City and country e.g. Bogotá, Colombia' } }, required: ['location'], additionalProperties: false }, strict: true } }],
      tool_choice: 'required',
      stop: 'END',
      temperature: 0.2,
      top_p: 0.9,
      max_completion_tokens: 1024,
      user: 'user-1234',
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(maxOutputTokens).toBe(1024);
    expect(body).toEqual({
      model: 'claude-sonnet-4-5',
      system: [{ type: 'text', text: 'You are a helpful assistant.' }, { type: 'text', text: 'Answer in metric units.' }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'What is the weather like in Paris today?' }] }],
      tools: [{ name: 'get_weather', description: 'Get current temperature for a given location.', input_schema: { type: 'object', properties: { location: { type: 'string', description: 'City and country e.g. Bogotá, Colombia' } }, required: ['location'], additionalProperties: false }, strict: true }],
      tool_choice: { type: 'any' },
      stop_sequences: ['END'],
      temperature: 0.2,
      top_p: 0.9,
      max_tokens: 1024,
      metadata: { user_id: 'user-1234' },
      stream: true,
    });
  });

  it('uses the catalog cap for max_tokens when the client sets none, and max_completion_tokens over max_tokens', () => {
    expect(translate({ model: 'm', messages: [{ role: 'user', content: 'x' }] }).body.max_tokens).toBe(64_000);
    expect(translate({ model: 'm', messages: [{ role: 'user', content: 'x' }], max_tokens: 10, max_completion_tokens: 20 }).body.max_tokens).toBe(20);
  });

  it('translates images by data URL and https URL, PDF files, and keeps cache_control on parts', () => {
    const { body } = translate({
      model: 'm',
      messages: [{ role: 'user', content: [
        { type: 'text', text: 'Compare these', cache_control: { type: 'ephemeral' } },
        { type: 'image_url', image_url: { url: 'data:image/jpeg;base64,/9j/4AAQ', detail: 'high' } },
        { type: 'image_url', image_url: { url: 'https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg' } },
        { type: 'file', file: { filename: 'report.pdf', file_data: 'data:application/pdf;base64,JVBERi0x' } },
      ] }],
    });
    expect(body.messages).toEqual([{ role: 'user', content: [
      { type: 'text', text: 'Compare these', cache_control: { type: 'ephemeral' } },
      { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: '/9j/4AAQ' } },
      { type: 'image', source: { type: 'url', url: 'https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg' } },
      { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0x' }, title: 'report.pdf' },
    ] }]);
  });

  it('turns a tool-call round trip into tool_use and tool_result blocks, merging consecutive tool results into one user turn', () => {
    const { body } = translate({
      model: 'm',
      messages: [
        { role: 'user', content: 'Weather in Paris and Bogotá?' },
        { role: 'assistant', content: 'Checking both.', tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris, France"}' } },
          { id: 'call_2', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Bogotá, Colombia"}' } },
        ] },
        { role: 'tool', tool_call_id: 'call_1', content: '14°C' },
        { role: 'tool', tool_call_id: 'call_2', content: [{ type: 'text', text: '18°C' }] },
      ],
      parallel_tool_calls: false,
      tools: [{ type: 'function', function: { name: 'get_weather' } }],
    });
    expect(body.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Weather in Paris and Bogotá?' }] },
      { role: 'assistant', content: [
        { type: 'text', text: 'Checking both.' },
        { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { location: 'Paris, France' } },
        { type: 'tool_use', id: 'call_2', name: 'get_weather', input: { location: 'Bogotá, Colombia' } },
      ] },
      { role: 'user', content: [
        { type: 'tool_result', tool_use_id: 'call_1', content: '14°C' },
        { type: 'tool_result', tool_use_id: 'call_2', content: [{ type: 'text', text: '18°C' }] },
      ] },
    ]);
    expect(body.tools).toEqual([{ name: 'get_weather', input_schema: { type: 'object', properties: {} } }]);
    expect(body.tool_choice).toEqual({ type: 'auto', disable_parallel_tool_use: true });
  });

  it('maps tool_choice, response_format json_schema and reasoning_effort', () => {
    const base = { model: 'm', messages: [{ role: 'user', content: 'x' }] };
    expect(translate({ ...base, tool_choice: 'auto' }).body.tool_choice).toEqual({ type: 'auto' });
    expect(translate({ ...base, tool_choice: 'none' }).body.tool_choice).toEqual({ type: 'none' });
    expect(translate({ ...base, tool_choice: { type: 'function', function: { name: 'f' } } }).body.tool_choice).toEqual({ type: 'tool', name: 'f' });
    const schema = { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'], additionalProperties: false };
    expect(translate({ ...base, response_format: { type: 'json_schema', json_schema: { name: 'a', schema, strict: true } } }).body.output_config).toEqual({ format: { type: 'json_schema', schema } });
    expect(translate({ ...base, response_format: { type: 'text' } }).body.output_config).toBeUndefined();
    expect(translate({ ...base, reasoning_effort: 'medium' }).body.thinking).toEqual({ type: 'enabled', budget_tokens: 2048 });
    expect(translate({ ...base, reasoning_effort: 'low', max_tokens: 1500 }).body.thinking).toEqual({ type: 'enabled', budget_tokens: 1024 });
    expect(translate({ ...base, reasoning_effort: 'high', max_tokens: 2000 }).body.thinking).toEqual({ type: 'enabled', budget_tokens: 1999 });
    expect(translate({ ...base, reasoning_effort: 'none' }).body.thinking).toBeUndefined();
  });

  it('sends thinking_blocks back before the tool calls, and continues a tool-use loop without them without thinking', () => {
    const loop = (assistant: Record<string, unknown>) => translate({
      model: 'm', reasoning_effort: 'low', tools: [{ type: 'function', function: { name: 'f' } }],
      messages: [{ role: 'user', content: 'go' }, { role: 'assistant', content: null, tool_calls: [{ id: 't1', type: 'function', function: { name: 'f', arguments: '{}' } }], ...assistant }, { role: 'tool', tool_call_id: 't1', content: 'ok' }],
    }).body;
    const withThinking = loop({ reasoning_content: 'call f', thinking_blocks: [{ type: 'thinking', thinking: 'call f', signature: 'EqQB' }] });
    expect((withThinking.messages as any)[1].content).toEqual([{ type: 'thinking', thinking: 'call f', signature: 'EqQB' }, { type: 'tool_use', id: 't1', name: 'f', input: {} }]);
    expect(withThinking.thinking).toEqual({ type: 'enabled', budget_tokens: 1024 });
    // Anthropic refuses a thinking request whose tool-use turn lacks its thinking: this one step goes without.
    expect(loop({}).thinking).toBeUndefined();
  });

  it('accepts the values that change nothing, and null for any parameter', () => {
    const { body } = translate({ model: 'm', messages: [{ role: 'user', content: 'x' }], n: 1, presence_penalty: 0, frequency_penalty: 0, logprobs: false, store: false, seed: null, logit_bias: null, service_tier: 'auto', prompt_cache_key: 'k' });
    expect(Object.keys(body).sort()).toEqual(['max_tokens', 'messages', 'model']);
  });

  it.each([
    [{ n: 2 }, /^n: /],
    [{ logit_bias: { '1': 2 } }, /^logit_bias: /],
    [{ seed: 7 }, /^seed: /],
    [{ frequency_penalty: 0.5 }, /^frequency_penalty: /],
    [{ logprobs: true }, /^logprobs: /],
    [{ audio: { voice: 'alloy', format: 'mp3' } }, /^audio: /],
    [{ modalities: ['text', 'audio'] }, /^modalities: /],
    [{ web_search_options: {} }, /^web_search_options: /],
    [{ temperature: 1.7 }, /^temperature: /],
    [{ response_format: { type: 'json_object' } }, /^response_format: /],
    [{ reasoning_effort: 'low', max_tokens: 1024 }, /^reasoning_effort: /],
    [{ reasoning_effort: 'extreme' }, /^reasoning_effort: /],
    [{ tools: [{ type: 'custom', custom: { name: 'x' } }] }, /^tools\[0\]\.type: /],
    [{ parallel_tool_calls: false }, /^parallel_tool_calls: /],
    [{ messages: [{ role: 'user', content: 'x', name: 'alice' }] }, /^messages\[0\]\.name: /],
    [{ messages: [{ role: 'function', content: 'x' }] }, /^messages\[0\]\.role: /],
    [{ messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'x', format: 'wav' } }] }] }, /^messages\[0\]\.content\[0\]\.type: /],
    [{ messages: [{ role: 'user', content: [{ type: 'file', file: { file_id: 'file-abc' } }] }] }, /^messages\[0\]\.content\[0\]\.file\.file_id: /],
    [{ messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{not json' } }] }] }, /messages\[0\]\.tool_calls\[0\]\.function\.arguments/],
  ])('refuses %j with a 400 naming it', (extra, message) => {
    const err = refusal({ model: 'm', messages: [{ role: 'user', content: 'x' }], ...extra });
    expect(err.status).toBe(400);
    expect(err.message).toMatch(message);
  });
});

describe('chat → messages: responses', () => {
  it('translates the Messages API example response into a chat.completion', () => {
    const res = chatToMessages.response({
      id: 'msg_013Zva2CMHLNnXjNJJKqJ2EF', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5-20250929',
      content: [{ type: 'text', text: 'Hi! My name is Claude.' }], stop_reason: 'end_turn', stop_sequence: null,
      usage: { input_tokens: 2095, output_tokens: 503 },
    });
    expect(res).toEqual({
      id: 'msg_013Zva2CMHLNnXjNJJKqJ2EF', object: 'chat.completion', created: expect.any(Number), model: 'claude-sonnet-4-5-20250929',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hi! My name is Claude.', refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: 2095, completion_tokens: 503, total_tokens: 2598, prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } },
    });
  });

  it('translates the tool-use example response, thinking and cache usage', () => {
    const res = chatToMessages.response({
      id: 'msg_01Aq9w938a90dw8q', type: 'message', role: 'assistant', model: 'claude-opus-4-6', stop_reason: 'tool_use',
      content: [
        { type: 'thinking', thinking: 'The user wants the weather.', signature: 'EqQBCgIYAhIM' },
        { type: 'text', text: 'I’ll check the current weather in San Francisco for you.' },
        { type: 'tool_use', id: 'toolu_01A09q90qw90lq917835lq9', name: 'get_weather', input: { location: 'San Francisco, CA', unit: 'celsius' } },
      ],
      usage: { input_tokens: 50, cache_creation_input_tokens: 1000, cache_read_input_tokens: 2000, output_tokens: 80 },
    });
    expect(res.choices).toEqual([{ index: 0, logprobs: null, finish_reason: 'tool_calls', message: {
      role: 'assistant', content: 'I’ll check the current weather in San Francisco for you.', refusal: null, reasoning_content: 'The user wants the weather.',
      thinking_blocks: [{ type: 'thinking', thinking: 'The user wants the weather.', signature: 'EqQBCgIYAhIM' }],
      tool_calls: [{ id: 'toolu_01A09q90qw90lq917835lq9', type: 'function', function: { name: 'get_weather', arguments: '{"location":"San Francisco, CA","unit":"celsius"}' } }],
    } }]);
    expect(res.usage).toMatchObject({ prompt_tokens: 3050, completion_tokens: 80, total_tokens: 3130, prompt_tokens_details: { cached_tokens: 2000, cache_write_tokens: 1000 } });
  });

  it.each([
    ['end_turn', 'stop'], ['stop_sequence', 'stop'], ['max_tokens', 'length'], ['tool_use', 'tool_calls'],
    ['refusal', 'content_filter'], ['model_context_window_exceeded', 'length'], ['pause_turn', 'stop'],
  ])('maps stop_reason %s to finish_reason %s', (stop, finish) => {
    expect((chatToMessages.response({ content: [], stop_reason: stop, usage: {} }).choices as any)[0].finish_reason).toBe(finish);
  });

  it('maps an Anthropic error body to the OpenAI error format', () => {
    const body = Buffer.from(JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens: 100000 > 64000, which is the maximum allowed number of output tokens for claude-sonnet-4-5' } }));
    expect(chatToMessages.error(400, body)).toEqual({ error: { message: 'max_tokens: 100000 > 64000, which is the maximum allowed number of output tokens for claude-sonnet-4-5', type: 'invalid_request_error', code: 'invalid_request_error', param: null } });
    expect(chatToMessages.error(429, Buffer.from('{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'))).toMatchObject({ error: { type: 'rate_limit_error', code: 'rate_limit_error' } });
    expect(chatToMessages.error(400, Buffer.from('not json'))).toMatchObject({ error: { message: 'The upstream provider answered 400.', type: 'invalid_request_error' } });
  });
});

/** The "Streaming Messages" reference's tool-use example: a text block, then a tool_use block's input in pieces. */
const STREAMING_TOOL_USE = `event: message_start
data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-opus-4-6","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2},"content":[],"stop_reason":null}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":", let's check the weather for San Francisco, CA:"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"location\\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \\"San Francisco, CA\\", \\"unit\\": \\"fahrenheit\\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

`;

describe('chat → messages: streams', () => {
  it('translates the streaming tool-use example into chunks with tool-call argument deltas', () => {
    const chunks = translateAll(chatToMessages.stream({ clientWantsUsage: true }), events(STREAMING_TOOL_USE));
    const data = chunks.map((c) => (c === 'data: [DONE]' ? c : JSON.parse(c.slice(6))));
    expect(data[0]).toMatchObject({ id: 'msg_014p7gG3wDgGV9EUtLvnow3U', object: 'chat.completion.chunk', model: 'claude-opus-4-6', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
    expect(data.slice(1, 3).map((c) => c.choices[0].delta)).toEqual([{ content: 'Okay' }, { content: ", let's check the weather for San Francisco, CA:" }]);
    expect(data[3].choices[0].delta).toEqual({ tool_calls: [{ index: 0, id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', type: 'function', function: { name: 'get_weather', arguments: '' } }] });
    expect(data.slice(4, 6).map((c) => c.choices[0].delta)).toEqual([
      { tool_calls: [{ index: 0, function: { arguments: '{"location":' } }] },
      { tool_calls: [{ index: 0, function: { arguments: ' "San Francisco, CA", "unit": "fahrenheit"}' } }] },
    ]);
    expect(data[6].choices[0]).toEqual({ index: 0, delta: {}, logprobs: null, finish_reason: 'tool_calls' });
    expect(data[7]).toMatchObject({ choices: [], usage: { prompt_tokens: 472, completion_tokens: 89, total_tokens: 561 } });
    expect(data[8]).toBe('data: [DONE]');
    expect(data).toHaveLength(9);
    expect(accumulateChat(chunks).tool_calls[0].function.arguments).toBe('{"location": "San Francisco, CA", "unit": "fahrenheit"}');
  });

  it('leaves the usage chunk out when the client did not ask for it, and streams thinking as reasoning_content', () => {
    const thinking = [
      'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","model":"claude-sonnet-4-5","usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":1}}}',
      'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}',
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me think"}}',
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}}',
      'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}',
      'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":12}}',
      'event: message_stop\ndata: {"type":"message_stop"}',
    ];
    const chunks = translateAll(chatToMessages.stream({ clientWantsUsage: false }), thinking);
    expect(chunks).toHaveLength(5);
    expect(JSON.parse(chunks[1]!.slice(6)).choices[0].delta).toEqual({ reasoning_content: 'Let me think' });
    expect(JSON.parse(chunks[2]!.slice(6)).choices[0].delta).toEqual({ thinking_blocks: [{ type: 'thinking', thinking: 'Let me think', signature: 'EqQB' }] });
    expect(JSON.parse(chunks[3]!.slice(6)).choices[0].finish_reason).toBe('length');
    expect(chunks[4]).toBe('data: [DONE]');
  });

  it('turns an error event into OpenAI’s mid-stream error chunk', () => {
    const [chunk] = translateAll(chatToMessages.stream({ clientWantsUsage: false }), ['event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}']);
    expect(JSON.parse(chunk!.slice(6))).toEqual({ error: { message: 'Overloaded', type: 'server_error', code: 'overloaded_error', param: null } });
  });
});
