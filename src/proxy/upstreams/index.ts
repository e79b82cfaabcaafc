import type { Socket } from 'node:net';
import type { Config } from '../../config.js';
import type { Provider } from '../../domain/models/models.service.js';
import { anthropicProvider } from './anthropic/index.js';
import { demoBaseUrl } from './demo/index.js';
import type { UpstreamTarget } from './http.js';
import { openaiProvider } from './openai/index.js';
import type { UpstreamProvider } from './types.js';

export const PROVIDERS: Record<Provider, UpstreamProvider> = { openai: openaiProvider, anthropic: anthropicProvider };

export interface Upstreams {
  /** The target for a provider's requests; `socket` is the connection the client's request arrived on. */
  resolve(provider: Provider, socket: Socket): UpstreamTarget;
  /** Providers served by the built-in demo because nothing is configured for them. */
  readonly demoProviders: Provider[];
}

/**
 * Upstream targets from configuration. A provider without an API key is served by the built-in demo upstream,
 * which this same app serves under /demo; it is reached over HTTP like any provider, at the local address the
 * client's request came in on (the app's own listen address, known only after listen). A server that needs no
 * key (a local model server) is configured with its base URL and any non-empty key.
 */
export function createUpstreams(config: Pick<Config, 'openai' | 'anthropic' | 'demoToken'>): Upstreams {
  const configured = new Map<Provider, UpstreamTarget>();
  for (const provider of Object.values(PROVIDERS)) {
    const { baseUrl, apiKey } = config[provider.name];
    if (apiKey) configured.set(provider.name, targetAt(provider, baseUrl ?? provider.defaultBaseUrl, apiKey, false));
  }
  const demoTargets = new Map<string, UpstreamTarget>();
  return {
    demoProviders: Object.values(PROVIDERS).filter((p) => !configured.has(p.name)).map((p) => p.name),
    resolve(name, socket) {
      const target = configured.get(name);
      if (target) return target;
      const baseUrl = demoBaseUrl(name, socket);
      let demo = demoTargets.get(baseUrl);
      if (!demo) demoTargets.set(baseUrl, (demo = targetAt(PROVIDERS[name], baseUrl, config.demoToken, true)));
      return demo;
    },
  };
}

function targetAt(provider: UpstreamProvider, baseUrl: string, apiKey: string | undefined, demo: boolean): UpstreamTarget {
  const url = new URL(baseUrl);
  return { provider, origin: url.origin, basePath: url.pathname.replace(/\/+$/, ''), apiKey, demo };
}
