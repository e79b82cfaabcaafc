import { countTokens, encodingOf } from '../../upstreams/openai/tokens.js';
import { isObject } from '../shared.js';
import type { Json } from '../types.js';

/**
 * OpenAI's framing of a chat prompt: a few tokens per message and a few to prime the reply (OpenAI cookbook, "How to
 * count tokens with tiktoken").
 */
const TOKENS_PER_MESSAGE = 3;
const REPLY_PRIMING_TOKENS = 3;
/** A high-detail image of 1024×1024 pixels (85 + 170 per 512-pixel tile), OpenAI's vision guide. */
const IMAGE_TOKENS = 765;

/**
 * The input tokens of a translated OpenAI chat request, counted here with the model's tokenizer: OpenAI has no
 * token-counting endpoint, and Claude Code asks /v1/messages/count_tokens for any model it runs. An estimate (tool
 * definitions are counted as their JSON, images at a fixed size); nothing is billed by it.
 */
export async function countChatInputTokens(body: Json, upstreamModel: string): Promise<number> {
  const encoding = encodingOf(upstreamModel);
  const texts: string[] = [];
  let tokens = REPLY_PRIMING_TOKENS;
  for (const message of Array.isArray(body.messages) ? body.messages.filter(isObject) : []) {
    tokens += TOKENS_PER_MESSAGE;
    const content = message.content;
    if (typeof content === 'string') texts.push(content);
    else if (Array.isArray(content))
      for (const part of content.filter(isObject)) {
        if (typeof part.text === 'string') texts.push(part.text);
        else if (part.type === 'image_url') tokens += IMAGE_TOKENS;
        else texts.push(JSON.stringify(part));
      }
    if (Array.isArray(message.tool_calls)) texts.push(JSON.stringify(message.tool_calls));
  }
  if (Array.isArray(body.tools)) texts.push(JSON.stringify(body.tools));
  return tokens + (await countTokens(texts.join('\n'), encoding));
}
