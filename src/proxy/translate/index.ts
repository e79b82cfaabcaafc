import type { Provider } from '../../domain/models/models.service.js';
import type { MeteredEndpointName } from '../upstreams/types.js';
import { chatToMessages } from './chat-to-messages/index.js';
import { messagesToChat } from './messages-to-chat/index.js';
import type { Translator } from './types.js';

export type { StreamTranslator, TranslatedRequest, Translator } from './types.js';

/**
 * The translators, by the endpoint the client called and the provider of the model it named. A pair that is not
 * listed is not translated (embeddings have no Anthropic counterpart); a new format is a new entry here.
 */
const TRANSLATORS: Partial<Record<MeteredEndpointName, Partial<Record<Provider, Translator>>>> = {
  chat: { anthropic: chatToMessages },
  messages: { openai: messagesToChat },
};

export function translatorFor(endpoint: MeteredEndpointName, provider: Provider): Translator | null {
  return TRANSLATORS[endpoint]?.[provider] ?? null;
}
