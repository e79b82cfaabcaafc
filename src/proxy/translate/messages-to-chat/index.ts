import type { Translator } from '../types.js';
import { countChatInputTokens } from './count-tokens.js';
import { messagesToChatRequest } from './request.js';
import { chatToMessagesResponse, messagesError } from './response.js';
import { ChatToMessagesStream } from './stream.js';

/** Anthropic Messages clients served by OpenAI models (Claude Code with ANTHROPIC_MODEL set to an OpenAI model). */
export const messagesToChat: Translator = {
  upstreamEndpoint: 'chat',
  request: messagesToChatRequest,
  response: chatToMessagesResponse,
  stream: () => new ChatToMessagesStream(),
  error: messagesError,
  countInputTokens: countChatInputTokens,
};
