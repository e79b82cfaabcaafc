import type { Response } from 'express';
import { randomBase62 } from '../../../domain/ids.js';
import { inputTokens, now, replyWords, sendEvents, type DemoBody } from './replies.js';

/** The demo's Responses API answer: one message, as the API reference shapes it (not stored: nothing to read back). */
function demoResponse(body: DemoBody) {
  const words = replyWords(body, 'OpenAI');
  const prompt = inputTokens(body);
  const cut = body.max_output_tokens !== undefined && words.length >= body.max_output_tokens;
  const message = { id: `msg_demo${randomBase62(16)}`, type: 'message', status: cut ? 'incomplete' : 'completed', role: 'assistant',
    content: [{ type: 'output_text', text: words.join(''), annotations: [] }] };
  const response = {
    id: `resp_demo${randomBase62(16)}`, object: 'response', created_at: now(), model: body.model, status: cut ? 'incomplete' : 'completed',
    incomplete_details: cut ? { reason: 'max_output_tokens' } : null, error: null, store: false, output: [message],
    usage: { input_tokens: prompt, input_tokens_details: { cached_tokens: 0 }, output_tokens: words.length, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: prompt + words.length },
  };
  return { response, message, words };
}

export function openaiResponse(body: DemoBody) {
  return demoResponse(body).response;
}

export function openaiResponseStream(res: Response, body: DemoBody): void {
  const { response, message, words } = demoResponse(body);
  let n = 0;
  const ev = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: n++, ...data })}\n\n`;
  const started = { ...response, status: 'in_progress', incomplete_details: null, output: [], usage: null };
  const part = { item_id: message.id, output_index: 0, content_index: 0 };
  sendEvents(res, [
    ev('response.created', { response: started }),
    ev('response.in_progress', { response: started }),
    ev('response.output_item.added', { output_index: 0, item: { ...message, status: 'in_progress', content: [] } }),
    ev('response.content_part.added', { ...part, part: { type: 'output_text', text: '', annotations: [] } }),
    ...words.map((delta) => ev('response.output_text.delta', { ...part, delta })),
    ev('response.output_text.done', { ...part, text: message.content[0]!.text }),
    ev('response.content_part.done', { ...part, part: message.content[0] }),
    ev('response.output_item.done', { output_index: 0, item: message }),
    ev(response.status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response }),
  ]);
}

/** A compaction of the demo: one compaction item (its content is the demo's label, not an encrypted summary). */
export function openaiCompaction(body: DemoBody) {
  const prompt = inputTokens(body);
  return {
    id: `cmp_demo${randomBase62(16)}`, object: 'response.compaction', created_at: now(), model: body.model,
    output: [{ id: `cmp_item_demo${randomBase62(16)}`, type: 'compaction', encrypted_content: Buffer.from('[ModelBridge demo] compaction').toString('base64') }],
    usage: { input_tokens: prompt, input_tokens_details: { cached_tokens: 0 }, output_tokens: 1, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: prompt + 1 },
  };
}
