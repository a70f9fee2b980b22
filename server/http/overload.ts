// Load shedding: past a configured bound the server answers 503 DOCKET_ERR_OVERLOADED with
// Retry-After at once, rather than queueing work without bound. Three bounds, each 0 for none:
//
// - connections (--connections-max): a connection accepted while that many are open is excess;
//   each request on it is answered 503 with `Connection: close`, which frees it. Node drops
//   connections outright past twice the bound (server.maxConnections).
// - requests in flight (--requests-in-flight-max): requests received and not yet answered.
//   Long polls and event streams of the change feed, and standbys' binlog streams, are not
//   counted (connections bound them).
// - event-loop delay (--event-loop-delay-max-ms): the longest delay of the event loop seen
//   in the current or the previous second (perf_hooks.monitorEventLoopDelay).
//
// /healthz and /metrics are never shed, so probes and scrapers see an overloaded server.

import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Server, Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DocketErrorCode } from '../../src/errors.js';
import { errorBody } from './errors.js';

export interface OverloadBounds {
  readonly connectionsMax: number;
  readonly requestsInFlightMax: number;
  readonly eventLoopDelayMaxMs: number;
}

export interface OverloadStats extends OverloadBounds {
  readonly connections: number;
  readonly requestsInFlight: number;
  readonly eventLoopDelayMs: number;
  /** Requests answered 503, by the bound that refused them, since the server started. */
  readonly shed: { readonly connections: number; readonly requestsInFlight: number; readonly eventLoopDelay: number };
}

/** How late the event loop runs: the worst delay in the current or previous window, in ms. */
export interface EventLoopDelayProbe {
  delayMs(): number;
  stop(): void;
}

const WINDOW_MS = 1000;
const RESOLUTION_MS = 10;
export const RETRY_AFTER_SECONDS = 1;
const UNSHED = new Set(['/healthz', '/metrics']);

export function eventLoopDelayProbe(windowMs = WINDOW_MS): EventLoopDelayProbe {
  const histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  histogram.enable();
  let windowStart = Date.now();
  let previousMaxMs = 0;
  return {
    delayMs() {
      const now = Date.now();
      const currentMaxMs = histogram.count > 0 ? histogram.max / 1e6 : 0;
      const result = Math.max(previousMaxMs, currentMaxMs);
      if (now - windowStart >= windowMs) {
        // A new window; what the one just ended saw counts for one more (none if it was idle).
        previousMaxMs = now - windowStart >= 2 * windowMs ? 0 : currentMaxMs;
        histogram.reset();
        windowStart = now;
      }
      return result;
    },
    stop: () => histogram.disable(),
  };
}

export class OverloadGuard {
  private open = 0;
  private inFlight = 0;
  private readonly excess = new WeakSet<Socket>();
  private readonly shed = { connections: 0, requestsInFlight: 0, eventLoopDelay: 0 };

  constructor(
    readonly bounds: OverloadBounds,
    private readonly probe: EventLoopDelayProbe,
  ) {}

  /** Counts the server's connections (for TLS, once the handshake is done). */
  attach(server: Server, secure: boolean): void {
    if (this.bounds.connectionsMax > 0) server.maxConnections = 2 * this.bounds.connectionsMax;
    server.on(secure ? 'secureConnection' : 'connection', (socket: Socket) => {
      if (this.bounds.connectionsMax > 0 && this.open >= this.bounds.connectionsMax) this.excess.add(socket);
      this.open++;
      socket.once('close', () => this.open--);
    });
  }

  stats(): OverloadStats {
    return { ...this.bounds, connections: this.open, requestsInFlight: this.inFlight, eventLoopDelayMs: Math.round(this.probe.delayMs()), shed: { ...this.shed } };
  }

  /** The onRequest hook: answers 503 and returns the reply when a bound is passed. */
  async check(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const route = request.routeOptions.url;
    if (route !== undefined && UNSHED.has(route)) return undefined;
    if (this.excess.has(request.raw.socket as Socket)) {
      this.shed.connections++;
      void reply.header('connection', 'close');
      return refuse(reply, `the server has ${this.open} connections open, past its bound of ${this.bounds.connectionsMax}; this connection is closed`);
    }
    const { requestsInFlightMax, eventLoopDelayMaxMs } = this.bounds;
    if (eventLoopDelayMaxMs > 0) {
      const delay = this.probe.delayMs();
      if (delay > eventLoopDelayMaxMs) {
        this.shed.eventLoopDelay++;
        return refuse(reply, `the server's event loop is ${Math.round(delay)} ms late, past its bound of ${eventLoopDelayMaxMs} ms`);
      }
    }
    if (isStream(request)) return undefined;
    if (requestsInFlightMax > 0 && this.inFlight >= requestsInFlightMax) {
      this.shed.requestsInFlight++;
      return refuse(reply, `the server has ${this.inFlight} requests in flight, its bound`);
    }
    this.inFlight++;
    reply.raw.once('close', () => this.inFlight--);
    return undefined;
  }

  stop(): void {
    this.probe.stop();
  }
}

/** A long poll or event stream of the change feed, or a standby's binlog stream: waits rather than works. */
function isStream(request: FastifyRequest): boolean {
  if (request.routeOptions.url === '/changes/stream' || request.routeOptions.url === '/replication/binlog') return true;
  if (request.routeOptions.url !== '/changes') return false;
  const feed = (request.query as { feed?: unknown } | undefined)?.feed;
  return feed === 'longpoll' || feed === 'sse';
}

function refuse(reply: FastifyReply, message: string): FastifyReply {
  return reply
    .code(503)
    .header('retry-after', String(RETRY_AFTER_SECONDS))
    .type('application/json; charset=utf-8')
    .send(errorBody(503, DocketErrorCode.OVERLOADED, message));
}
