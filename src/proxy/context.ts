import type { LeaksService } from '../domain/keys/leaks.service.js';
import type { RefusalsService } from '../domain/keys/refusals.js';
import type { MeteringService } from '../domain/billing/metering.service.js';
import type { ModelsService } from '../domain/models/models.service.js';
import type { StoredResponsesService } from '../domain/responses/stored-responses.service.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { UpstreamClient } from './upstreams/http.js';
import type { Upstreams } from './upstreams/index.js';

/** What the /v1 handlers share, built once per app by createProxyRouter. */
export interface ProxyContext {
  metering: MeteringService;
  models: ModelsService;
  storedResponses: StoredResponsesService;
  refusals: RefusalsService;
  leaks: LeaksService;
  upstreams: Upstreams;
  http: UpstreamClient;
  metrics: Metrics;
  logger: Logger;
}
