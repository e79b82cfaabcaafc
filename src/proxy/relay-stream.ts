import { StringDecoder } from 'node:string_decoder';
import type { Response } from 'express';
import type { UsageOutcome } from '../domain/billing/metering.service.js';
import type { ProxyContext } from './context.js';
import { upstreamFailedMidStream } from './errors.js';
import { CLIENT_CLOSED, earlyEnd, header, logUpstreamFailure, NOTHING, passedHeaders, type Charge, type ClientWatch, type Exchange } from './exchange.js';
import type { Settler } from './settler.js';
import { isUpstreamTimeout, type UpstreamResponse, type UpstreamTarget } from './upstreams/http.js';
import { SseSplitter } from './upstreams/sse.js';
import type { StreamMeter } from './upstreams/types.js';

/**
 * A streamed answer, passed through as it arrives — no buffering beyond an incomplete event — while the
 * provider's meter reads usage on the side. Settled when the stream ends, just before the response does.
 * A client that leaves after the upstream finished generating gets nothing more, but the stream is read to its
 * end for the usage report (see ClientWatch); one that leaves before has the upstream request aborted at once.
 */
export async function relayStream(ctx: ProxyContext, x: Exchange, settlement: Settler, upstream: UpstreamResponse, target: UpstreamTarget, client: ClientWatch): Promise<UsageOutcome> {
  const stream = target.provider.streamMeter({ endpoint: x.endpoint.name, clientWantsUsage: x.request.clientWantsUsage, upstreamModel: x.model.upstreamModel, choices: x.request.choices });
  client.readOnWhen(() => stream.finished);
  try {
    return await relayEvents(ctx, x, settlement, upstream, target, client, stream);
  } finally {
    client.stop();
  }
}

async function relayEvents(ctx: ProxyContext, x: Exchange, settlement: Settler, upstream: UpstreamResponse, target: UpstreamTarget, client: ClientWatch, stream: StreamMeter): Promise<UsageOutcome> {
  // Only a stream with events to hide or change (the usage the client did not ask for: its chunk, and the
  // `"usage":null` of every other chunk) is relayed event by event; every other stream is written through chunk by
  // chunk as it arrives and only read on the side.
  const filtering = stream.hidesEvents;
  const splitter = new SseSplitter();
  const decoder = new StringDecoder('utf8');
  const res = x.res;
  res.writeHead(200, {
    ...passedHeaders(upstream, x),
    'content-type': header(upstream, 'content-type') ?? 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
  let broken: unknown = null;
  try {
    for await (const chunk of upstream.body as AsyncIterable<Buffer>) {
      const events = splitter.push(decoder.write(chunk));
      let out: string | Buffer = chunk;
      if (filtering) {
        out = '';
        for (const event of events) if (stream.observe(event)) out += `${stream.shownAs?.(event) ?? event}\n\n`;
      } else for (const event of events) stream.observe(event);
      if (out.length > 0 && !client.gone && !res.write(out)) await drained(res);
    }
    const rest = splitter.rest() + decoder.end();
    if (rest.trim() && stream.observe(rest) && filtering && !client.gone) res.write(stream.shownAs?.(rest) ?? rest);
  } catch (err) {
    broken = err;
  }

  let charge: Charge;
  if (client.gone) charge = await earlyEnd(x, stream, 'client_aborted', CLIENT_CLOSED);
  else if (broken || stream.failed) {
    // Output already reached the client: charge what it got. Before any output: nothing, like any upstream error.
    charge = stream.usage || stream.outputDeltas > 0
      ? await earlyEnd(x, stream, 'upstream_error', 200)
      : { usage: NOTHING, outcome: 'upstream_error', estimated: false, httpStatus: 200 };
  } else charge = await earlyEnd(x, stream, 'ok', 200);
  charge.responseId = stream.responseId ?? null;
  const outcome = await settlement.charge(charge);

  if (client.gone) return outcome;
  if (broken) {
    logUpstreamFailure(ctx.logger, x, broken);
    const message = upstreamFailedMidStream(isUpstreamTimeout(broken), charge.usage);
    res.write(stream.errorEvent?.(message) ?? target.provider.streamError(message));
  }
  res.end();
  return outcome;
}

function drained(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

