import { StringDecoder } from 'node:string_decoder';
import type { Response } from 'express';
import type { UsageOutcome } from '../domain/billing/metering.service.js';
import type { ProxyContext } from './context.js';
import { upstreamFailedMidStream } from './errors.js';
import { HoldGrowth } from './hold-growth.js';
import { CLIENT_CLOSED, earlyEnd, header, logUpstreamFailure, NOTHING, passedHeaders, type Charge, type ClientWatch, type Exchange } from './exchange.js';
import type { Settler } from './settler.js';
import { isUpstreamTimeout, type UpstreamResponse, type UpstreamTarget } from './upstreams/http.js';
import { PROVIDERS } from './upstreams/index.js';
import { SseSplitter } from './upstreams/sse.js';
import type { StreamMeter } from './upstreams/types.js';

/**
 * A streamed answer, passed through as it arrives — no buffering beyond an incomplete event — while the
 * provider's meter reads usage on the side. Settled when the stream ends, just before the response does.
 * A client that leaves after the upstream finished generating gets nothing more, but the stream is read to its
 * end for the usage report (see ClientWatch); one that leaves before has the upstream request aborted at once.
 */
export async function relayStream(ctx: ProxyContext, x: Exchange, settlement: Settler, upstream: UpstreamResponse, target: UpstreamTarget, client: ClientWatch): Promise<UsageOutcome> {
  // The upstream's meter reads the upstream's events before any translation; a translated stream hides nothing
  // itself (its translator writes what the client asked for).
  const stream = target.provider.streamMeter({
    endpoint: x.endpoint.name, clientWantsUsage: x.request.clientWantsUsage || x.translation !== null, upstreamModel: x.model.upstreamModel, choices: x.request.choices,
  });
  client.readOnWhen(() => stream.finished);
  try {
    return await relayEvents(ctx, x, settlement, upstream, target, client, stream);
  } finally {
    client.stop();
  }
}

async function relayEvents(ctx: ProxyContext, x: Exchange, settlement: Settler, upstream: UpstreamResponse, target: UpstreamTarget, client: ClientWatch, stream: StreamMeter): Promise<UsageOutcome> {
  // Only a stream with events to hide or change (the usage the client did not ask for: its chunk, and the
  // `"usage":null` of every other chunk), one that may be cut at its hold (whole events only, then its end), or one
  // that is translated (each event as its translator writes it) is relayed event by event; every other stream is
  // written through chunk by chunk as it arrives and only read on the side.
  const growth = HoldGrowth.of(ctx, x);
  const translating = x.translation?.translator.stream({ clientWantsUsage: x.request.clientWantsUsage }) ?? null;
  const filtering = stream.hidesEvents || growth !== null || translating !== null;
  const shown = (event: string) => (translating ? translating.event(event) : `${stream.shownAs?.(event) ?? event}\n\n`);
  const splitter = new SseSplitter();
  const decoder = new StringDecoder('utf8');
  const res = x.res;
  res.writeHead(200, {
    ...passedHeaders(upstream, x),
    'content-type': translating ? 'text/event-stream; charset=utf-8' : (header(upstream, 'content-type') ?? 'text/event-stream; charset=utf-8'),
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
  let broken: unknown = null;
  let cut = false;
  try {
    for await (const chunk of upstream.body as AsyncIterable<Buffer>) {
      const events = splitter.push(decoder.write(chunk));
      let out: string | Buffer = chunk;
      if (filtering) {
        out = '';
        for (const event of events) {
          if (stream.observe(event)) out += shown(event);
          // After each event, so a chunk holding much output cannot carry a stream far past its hold.
          if (growth?.passed(stream) && !stream.finished && !client.gone && (cut = await growth.mustCut(stream))) break;
        }
      } else for (const event of events) stream.observe(event);
      if (out.length > 0 && !client.gone && !res.write(out)) await drained(res);
      if (cut) break;
    }
    const rest = cut ? '' : splitter.rest() + decoder.end();
    if (rest.trim() && stream.observe(rest) && filtering && !client.gone) res.write(translating ? translating.event(rest) : (stream.shownAs?.(rest) ?? rest));
  } catch (err) {
    broken = err;
  }
  if (cut) client.cutUpstream();

  let charge: Charge;
  if (client.gone) charge = await earlyEnd(x, stream, 'client_aborted', CLIENT_CLOSED);
  else if (cut) charge = await earlyEnd(x, stream, 'cut_at_limit', 200);
  else if (broken || stream.failed) {
    // Output already reached the client: charge what it got. Before any output: nothing, like any upstream error.
    charge = stream.usage || stream.outputDeltas > 0
      ? await earlyEnd(x, stream, 'upstream_error', 200)
      : { usage: NOTHING, outcome: 'upstream_error', estimated: false, httpStatus: 200 };
  } else charge = await earlyEnd(x, stream, 'ok', 200);
  charge.responseId = stream.responseId ?? null;
  const outcome = await settlement.charge(charge);

  if (client.gone) return outcome;
  if (cut) {
    // Ended as if the model had stopped at its output cap, so every SDK finishes cleanly (a translated stream gets
    // them translated); the reason goes in an SSE comment, which parsers skip and people reading the stream see.
    const why = growth!.refusal?.message ?? 'The hold of this request could not grow.';
    res.write(`${stream.cutEvents().map(shown).join('')}: ModelBridge ended this response here: ${why.replace(/\s+/g, ' ')}\n\n`);
  } else if (broken) {
    logUpstreamFailure(ctx.logger, x, broken);
    // In the client's stream format, which is the upstream's unless the stream was translated.
    const message = upstreamFailedMidStream(isUpstreamTimeout(broken), charge.usage);
    res.write(x.translation ? PROVIDERS[x.endpoint.provider].streamError(message) : (stream.errorEvent?.(message) ?? target.provider.streamError(message)));
  } else if (translating) res.write(translating.end());
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

