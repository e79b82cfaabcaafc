import type { Translator } from '../types.js';
import { chatToMessagesRequest } from './request.js';
import { chatError, messagesToChatResponse } from './response.js';
import { MessagesToChatStream } from './stream.js';

/** OpenAI Chat Completions clients served by Anthropic models (Cursor, LangChain's ChatOpenAI, the openai SDK). */
export const chatToMessages: Translator = {
  upstreamEndpoint: 'messages',
  request: chatToMessagesRequest,
  response: messagesToChatResponse,
  stream: ({ clientWantsUsage }) => new MessagesToChatStream(clientWantsUsage),
  error: chatError,
};
