import { describe, expect, it } from 'vitest';
import { belongsTo } from '../../src/domain/responses/stored-responses.service.js';
import { tokenUsage } from '../../src/domain/models/pricing.js';
import { ENDPOINTS } from '../../src/proxy/endpoints.js';
import { estimateRequest, IMAGE_TOKEN_BOUND, inputTokenBound } from '../../src/proxy/estimate.js';
import { ProxyError } from '../../src/proxy/errors.js';
import { openaiProvider } from '../../src/proxy/upstreams/openai/index.js';
import { buildResponse, failedEvent, responsesTokens } from '../support/fake-responses.js';

const model = {
  id: 'gpt-x', provider: 'openai' as const, upstreamModel: 'gpt-x', inputMicroPerMTok: 1, outputMicroPerMTok: 1,
  cachedInputMicroPerMTok: null, cacheWriteMicroPerMTok: null, cacheWrite1hMicroPerMTok: null, maxOutputTokens: 1_000, enabled: true,
};
const estimate = (body: Record<string, unknown>, storedContext = 0) => {
  const full = { model: 'gpt-x', ...body };
  return estimateRequest(model, ENDPOINTS.responses.parse(full), full, storedContext);
};
const meter = () => openaiProvider.streamMeter({ endpoint: 'responses', clientWantsUsage: true, upstreamModel: 'gpt-4.1', choices: 1 });
const split = (tokens: number) => Array.from({ length: tokens }, () => 1);

describe('a Responses API request, as metering reads it', () => {
  it('takes max_output_tokens as the output cap, clamped to the catalog cap; without one, the catalog cap', () => {
    expect(estimate({ input: 'hi', max_output_tokens: 50 }).outputTokenBound).toBe(50);
    expect(estimate({ input: 'hi', max_output_tokens: 5_000_000 }).outputTokenBound).toBe(1_000);
    expect(estimate({ input: 'hi' }).outputTokenBound).toBe(1_000);
  });

  it('bounds the input by input and instructions, string or items, and counts an inline image a fixed bound', () => {
    const text = 'x'.repeat(1_000);
    expect(estimate({ input: text }).inputTokenBound).toBeGreaterThanOrEqual(1_000);
    expect(estimate({ input: 'a', instructions: text }).inputTokenBound).toBeGreaterThanOrEqual(1_000);
    const items = { input: [{ role: 'user', content: [{ type: 'input_text', text }] }, { type: 'function_call_output', call_id: 'c', output: text }] };
    expect(estimate(items).inputTokenBound).toBeGreaterThanOrEqual(2_000);
    const image = { input: [{ role: 'user', content: [{ type: 'input_image', image_url: `data:image/png;base64,${'A'.repeat(50_000)}` }] }] };
    expect(estimate(image).unbounded).toBe(false);
    expect(estimate(image).inputTokenBound).toBeLessThan(IMAGE_TOKEN_BOUND + 100);
  });

  it('holds the whole headroom for what the body does not show: files, images by URL or id, stored prompts, server tools', () => {
    const said = (content: unknown) => ({ input: [{ role: 'user', content }] });
    expect(estimate(said('hello')).unbounded).toBe(false);
    expect(estimate({ input: 'hi', tools: [{ type: 'function', name: 'f', parameters: {} }] }).unbounded).toBe(false);
    expect(estimate(said([{ type: 'input_file', file_id: 'file-1' }])).unbounded).toBe(true);
    expect(estimate(said([{ type: 'input_file', file_url: 'https://example.com/a.pdf' }])).unbounded).toBe(true);
    expect(estimate(said([{ type: 'input_image', file_id: 'file-2' }])).unbounded).toBe(true);
    expect(estimate(said([{ type: 'input_image', image_url: 'https://example.com/a.png' }])).unbounded).toBe(true);
    expect(estimate({ input: 'hi', prompt: { id: 'pmpt_1', version: '2' } }).unbounded).toBe(true);
    for (const type of ['web_search', 'web_search_preview', 'file_search', 'code_interpreter', 'mcp', 'image_generation'])
      expect(estimate({ input: 'hi', tools: [{ type }] }).unbounded, type).toBe(true);
  });

  it('adds the stored context of a previous response to the input bound', () => {
    const alone = estimate({ input: 'and then?' });
    const chained = estimate({ input: 'and then?' }, 12_345);
    expect(chained.inputTokenBound - alone.inputTokenBound).toBe(12_345);
    const pricey = { ...model, inputMicroPerMTok: 1_000_000 };
    const body = { model: 'gpt-x', input: 'and then?' };
    expect(estimateRequest(pricey, ENDPOINTS.responses.parse(body), body, 12_345).costMicro - estimateRequest(pricey, ENDPOINTS.responses.parse(body), body).costMicro).toBe(12_345);
    expect(chained.unbounded).toBe(false);
  });

  it('refuses background mode, conversations and a streamed compaction with a 400 naming the field', () => {
    const refusal = (parse: () => unknown) => {
      try {
        parse();
      } catch (err) {
        return err instanceof ProxyError ? `${err.status} ${err.message}` : String(err);
      }
      return 'accepted';
    };
    expect(refusal(() => ENDPOINTS.responses.parse({ model: 'm', input: 'x', background: true }))).toMatch(/^400 .*background: background mode is not supported/);
    expect(refusal(() => ENDPOINTS.responses.parse({ model: 'm', input: 'x', conversation: { id: 'conv_1' } }))).toMatch(/^400 .*conversation: conversations are not supported/);
    expect(refusal(() => ENDPOINTS.compact.parse({ model: 'm', input: 'x', stream: true }))).toMatch(/^400 .*stream/);
    expect(refusal(() => ENDPOINTS.responses.parse({ model: 'm', input: 'x', background: false, conversation: null }))).toBe('accepted');
    expect(ENDPOINTS.responses.parse({ model: 'm', input: 'x', store: false }).storesResponse).toBe(false);
    expect(ENDPOINTS.responses.parse({ model: 'm', input: 'x', previous_response_id: 'resp_1' })).toMatchObject({ storesResponse: true, previousResponseId: 'resp_1' });
    expect(ENDPOINTS.compact.parse({ model: 'm', input: 'x' }).storesResponse).toBe(false);
  });
});

describe('the Responses API stream meter', () => {
  const body = { model: 'gpt-4.1', input: 'Tell me', stream: true };
  const details = { cacheReadTokens: 1, reasoningTokens: 2 };

  it('reads the usage, by kind, and the response id from the stream, passing every event through', () => {
    const kinds = responsesTokens(body, 8, details);
    const built = buildResponse(body, kinds, 8, details, null, 7, split);
    const m = meter();
    expect(m.hidesEvents).toBe(false);
    for (const event of built.events) {
      expect(m.finished).toBe(false);
      expect(m.observe(event.trimEnd())).toBe(true);
    }
    expect(m.finished).toBe(true);
    expect(m.failed).toBe(false);
    expect(m.responseId).toBe('resp_fake7');
    expect(m.usage).toEqual(tokenUsage({ inputTokens: kinds.inputTokens, cachedInputTokens: 1, outputTokens: kinds.outputTokens, reasoningTokens: 2 }));
    // the reasoning tokens are hidden: the visible reply is the 8 reply tokens, one delta each
    expect(m.outputDeltas).toBe(8);
  });

  it('reads response.incomplete as the end with usage, and response.failed or an error event as a failure', () => {
    const cut = { ...body, max_output_tokens: 3 };
    const built = buildResponse(cut, responsesTokens(cut, 8, {}), 8, {}, null, 1, split);
    const m = meter();
    for (const event of built.events) m.observe(event.trimEnd());
    expect([m.finished, m.failed, m.usage?.outputTokens]).toEqual([true, false, 3]);

    const failed = meter();
    failed.observe(failedEvent('resp_9').trimEnd());
    expect([failed.finished, failed.failed, failed.usage]).toEqual([true, true, null]);
    const errored = meter();
    errored.observe('event: error\ndata: {"type":"error","code":"server_error","message":"boom","param":null}');
    expect([errored.finished, errored.failed]).toEqual([false, true]);
  });

  it('bounds the output of a cut stream by every kind of delta received, and a tool call’s name, from above', async () => {
    const args = JSON.stringify({ path: 'src/index.ts', pattern: 'TODO' });
    const call = buildResponse(body, responsesTokens(body, 8, {}), 8, {}, { name: 'grep_files', arguments: args, custom: false }, 2, split);
    const m = meter();
    for (const event of call.events.slice(0, call.terminal)) m.observe(event.trimEnd());
    expect(m.finished).toBe(false);
    const bound = await m.outputTokensBound(1_000);
    // the name and the arguments, tokenized apart: at least one token per delta, never the whole cap
    expect(bound).toBeGreaterThanOrEqual(m.outputDeltas + 1);
    expect(bound).toBeLessThan(args.length);
    expect(await m.outputTokensBound(2)).toBe(2);
  });

  it('reads events that come without an `event:` line by the type in their data', () => {
    const m = meter();
    m.observe('data: {"type":"response.output_text.delta","item_id":"m","output_index":0,"content_index":0,"delta":"hello"}');
    m.observe('data: {"type":"response.completed","response":{"id":"resp_2","usage":{"input_tokens":5,"output_tokens":1}}}');
    expect([m.outputDeltas, m.finished, m.responseId, m.usage?.inputTokens]).toEqual([1, true, 'resp_2', 5]);
  });

  it('ends a broken stream with the Responses API error event', () => {
    expect(meter().errorEvent!('gone')).toBe('event: error\ndata: {"type":"error","code":"upstream_error","message":"gone","param":null}\n\n');
  });
});

describe('who may touch a stored response', () => {
  const personal = { ownerId: 'u1', teamId: null };
  const team = { ownerId: 'u1', teamId: 't1' };
  it('its user’s personal keys for a personal key’s response, its team’s keys for a team key’s, nobody else', () => {
    expect(belongsTo(personal, { ownerId: 'u1', teamId: null })).toBe(true);
    expect(belongsTo(personal, { ownerId: 'u2', teamId: null })).toBe(false);
    expect(belongsTo(personal, { ownerId: 'u1', teamId: 't1' })).toBe(false);
    expect(belongsTo(team, { ownerId: 'u2', teamId: 't1' })).toBe(true);
    expect(belongsTo(team, { ownerId: 'u1', teamId: null })).toBe(false);
    expect(belongsTo(team, { ownerId: 'u1', teamId: 't2' })).toBe(false);
  });
});
