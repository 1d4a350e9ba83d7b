import { assert } from '../../lib/assert.js';
import { Rng } from '../../lib/rng.js';
import { BITS_PER_BYTE, US_PER_S } from '../../lib/units.js';
import { TcpFlag } from '../../lib/codec/messages.js';
import type { Core, Effect, Input } from '../../lib/runtime/types.js';
import { TcpEndpoint, type TcpIo, type TcpOptions } from '../../lib/tcp/index.js';
import { DeliveryTracer } from '../../lib/tracing/endpoints.js';
import type { TracingOptions } from '../../lib/tracing/options.js';
import { ByteGenerator, StreamVerifier } from '../guest/workload/byte-generator.js';
import { connectionWorkloads, STREAM_CLIENT_TO_SERVER, STREAM_SERVER_TO_CLIENT, streamName, type ConnectionWorkload, type RrWorkload, type Workload } from '../guest/workload/workload.js';

export interface ClientCoreOptions {
  readonly vmId: string;
  readonly seed: number;
  readonly tcp: TcpOptions;
  readonly workload: Workload;
  /** Where the client's segments go (toward the protected machine). */
  readonly txSubject: string;
  readonly rxSubject: string;
  /** Latency samples kept; later requests are counted but not sampled. */
  readonly maxLatencySamples: number;
  /** Width of the delivery timeline's bins. */
  readonly timelineBinUs: number;
  /** Bins kept; deliveries after the last bin are counted in bytesDelivered only. */
  readonly timelineBins: number;
  /** Which bytes' deliveries to report as spans (docs/tracing.md); none by default. */
  readonly tracing?: TracingOptions;
}

export interface ClientStats {
  /** When the first connection was established. */
  connectedAtUs: number | null;
  /** Summed over the connections. */
  bytesDelivered: number;
  /** Of bulk connections alone (a mixed workload's bulk goodput). */
  bulkBytesDelivered: number;
  lastDeliveryUs: number;
  /** Every connection's stream, byte for byte. */
  streamVerified: boolean;
  /** Where the first mismatch was, in the stream of `firstMismatchConnId`. */
  firstMismatchOffset: number | null;
  firstMismatchConnId: number | null;
  /** When the guest closed a connection (a bulk transfer of `totalBytes` completed): the run is over. */
  peerClosedAtUs: number | null;
  requestsCompleted: number;
  latenciesUs: number[];
  /** Bytes delivered per timeline bin, from t = 0, all connections. */
  deliveredPerBin: number[];
  /** Segments of a connection this client did not open, dropped. */
  unknownConnectionDrops: number;
  /**
   * Answers to this client's SYN that belong to an established connection:
   * an ACK or data without a SYN, dropped (RFC 9293, SYN-SENT). The VM still
   * serves an earlier client on this connection: a VM serves one client
   * connection per connection id in its lifetime.
   */
  segmentsOfAnEarlierConnection: number;
}

/** One connection the client opened, and the workload it carries. */
class ClientConnection {
  readonly tcp: TcpEndpoint;
  readonly verifier: StreamVerifier;
  readonly requestGenerator: ByteGenerator;
  readonly deliveries: DeliveryTracer | null;
  /** Draws exponential think times (a stream of its own per connection, from the run's seed). */
  readonly #thinkRng: Rng;
  requestSentUs = 0;
  responseBytesPending = 0;

  constructor(
    readonly connId: number,
    readonly workload: ConnectionWorkload,
    options: ClientCoreOptions,
    io: TcpIo,
  ) {
    this.verifier = new StreamVerifier(new ByteGenerator(options.seed, streamName(STREAM_SERVER_TO_CLIENT, connId)));
    this.requestGenerator = new ByteGenerator(options.seed, streamName(STREAM_CLIENT_TO_SERVER, connId));
    this.deliveries = options.tracing?.sampler === undefined ? null : new DeliveryTracer(options.vmId, options.tracing.sampler, connId);
    this.#thinkRng = new Rng(options.seed, `client/think/${connId}`);
    // Connection 1's timers keep the plain prefix, as a client of one connection always had.
    this.tcp = new TcpEndpoint(options.tcp, { vmId: options.vmId, connId, timerPrefix: connId === 1 ? 'tcp' : `tcp${connId}` }, io);
  }

  /** The pause before the next request: the think time, or an exponential draw of that mean (at most ~22× it: −ln 2⁻³²). */
  thinkTimeUs(w: RrWorkload): number {
    if (w.thinkTimeDistribution === 'constant' || w.thinkTimeUs === 0) return w.thinkTimeUs;
    return Math.round(-w.thinkTimeUs * Math.log(1 - this.#thinkRng.next()));
  }

  get thinkTimer(): string {
    return this.connId === 1 ? TIMER_THINK : `${TIMER_THINK}.${this.connId}`;
  }
}

const TIMER_THINK = 'client.think';

/**
 * The remote peer: opens the workload's connections (one, or a bulk and a
 * request/response one), verifies every byte it receives against the
 * workload generator and, for request/response, issues requests one at a
 * time and measures each one's latency.
 */
export class ClientCore implements Core {
  readonly name = 'client';
  readonly subscriptions: readonly string[];
  /** By connection id − 1. */
  readonly connections: readonly ClientConnection[];
  readonly stats: ClientStats = {
    connectedAtUs: null,
    bytesDelivered: 0,
    bulkBytesDelivered: 0,
    lastDeliveryUs: 0,
    streamVerified: true,
    firstMismatchOffset: null,
    firstMismatchConnId: null,
    peerClosedAtUs: null,
    requestsCompleted: 0,
    latenciesUs: [],
    deliveredPerBin: [],
    unknownConnectionDrops: 0,
    segmentsOfAnEarlierConnection: 0,
  };
  readonly #out: Effect[][] = [];
  readonly #spanSink = { push: (e: Effect) => this.#emit(e) };
  #nowUs = 0;

  constructor(readonly options: ClientCoreOptions) {
    this.subscriptions = [options.rxSubject];
    this.connections = connectionWorkloads(options.workload).map((workload, i) => {
      const connection: ClientConnection = new ClientConnection(i + 1, workload, options, {
        transmit: (seg) => this.#emit({ kind: 'send', subject: options.txSubject, msg: seg }),
        setTimer: (name, atUs) => this.#emit({ kind: 'setTimer', name, atUs }),
        cancelTimer: (name) => this.#emit({ kind: 'cancelTimer', name }),
        deliver: (chunk) => this.#onData(connection, chunk),
        connected: () => this.#onConnected(connection),
        sendSpaceFreed: () => undefined,
        peerClosed: () => {
          this.stats.peerClosedAtUs ??= this.#nowUs;
        },
      });
      return connection;
    });
  }

  /**
   * Goodput, in bits per second, from the start until the peer closed or
   * until `runEndUs`, whichever came first; `bulkOnly`: of the bulk
   * connection alone. Both runtimes report this one figure.
   */
  goodputBitsPerSec(runEndUs: number, bulkOnly = false): number {
    const endUs = this.stats.peerClosedAtUs ?? runEndUs;
    const bytes = bulkOnly ? this.stats.bulkBytesDelivered : this.stats.bytesDelivered;
    return endUs > 0 ? (bytes * BITS_PER_BYTE * US_PER_S) / endUs : 0;
  }

  /** Connection 1's endpoint (the only one of a bulk or rr workload). */
  get tcp(): TcpEndpoint {
    return this.connections[0]!.tcp;
  }

  handle(input: Input, nowUs: number): Effect[] {
    const effects: Effect[] = [];
    this.#out.push(effects);
    this.#nowUs = nowUs;
    try {
      switch (input.kind) {
        case 'start':
          for (const c of this.connections) c.tcp.connect(nowUs);
          break;
        case 'message': {
          // The client's one subject carries segments alone (the codec decodes each subject as its own type).
          assert(input.msg.type === 'segment', () => `a ${input.msg.type} on the client's wire`);
          const seg = input.msg;
          const c = this.connections[seg.connId - 1];
          if (c === undefined) {
            this.stats.unknownConnectionDrops++;
            break;
          }
          if (c.tcp.state === 'syn-sent' && (seg.flags & (TcpFlag.SYN | TcpFlag.RST)) === 0) this.stats.segmentsOfAnEarlierConnection++;
          if (c.deliveries !== null && seg.payload.length > 0) c.deliveries.arrived(seg.term, seg.seq - 1, seg.seq - 1 + seg.payload.length);
          c.tcp.onSegment(seg, nowUs);
          break;
        }
        case 'timer': {
          const thinking = this.connections.find((c) => c.thinkTimer === input.name);
          if (thinking !== undefined) this.#sendRequest(thinking);
          else for (const c of this.connections) if (c.tcp.onTimer(input.name, nowUs)) break;
          break;
        }
      }
    } finally {
      this.#out.pop();
    }
    return effects;
  }

  #emit(effect: Effect): void {
    this.#out[this.#out.length - 1]!.push(effect);
  }

  #onConnected(c: ClientConnection): void {
    this.stats.connectedAtUs ??= this.#nowUs;
    if (c.workload.kind === 'rr') this.#sendRequest(c);
  }

  #onData(c: ClientConnection, chunk: Uint8Array): void {
    c.deliveries?.delivered(c.verifier.bytesVerified, c.verifier.bytesVerified + chunk.length, this.#nowUs, this.#spanSink);
    c.verifier.check(chunk);
    if (this.stats.streamVerified && !c.verifier.ok) {
      this.stats.streamVerified = false;
      this.stats.firstMismatchOffset = c.verifier.firstMismatchOffset;
      this.stats.firstMismatchConnId = c.connId;
    }
    this.stats.bytesDelivered += chunk.length;
    if (c.workload.kind === 'bulk') this.stats.bulkBytesDelivered += chunk.length;
    this.stats.lastDeliveryUs = this.#nowUs;
    const bin = Math.floor(this.#nowUs / this.options.timelineBinUs);
    if (bin < this.options.timelineBins) {
      const timeline = this.stats.deliveredPerBin;
      while (timeline.length <= bin) timeline.push(0);
      timeline[bin]! += chunk.length;
    }
    const w = c.workload;
    if (w.kind !== 'rr') return;
    c.responseBytesPending -= chunk.length;
    if (c.responseBytesPending > 0) return;
    this.stats.requestsCompleted++;
    if (this.stats.latenciesUs.length < this.options.maxLatencySamples) this.stats.latenciesUs.push(this.#nowUs - c.requestSentUs);
    const thinkUs = c.thinkTimeUs(w);
    if (thinkUs > 0) this.#emit({ kind: 'setTimer', name: c.thinkTimer, atUs: this.#nowUs + thinkUs });
    else this.#sendRequest(c);
  }

  #sendRequest(c: ClientConnection): void {
    const w = c.workload;
    if (w.kind !== 'rr') return;
    c.requestSentUs = this.#nowUs;
    c.responseBytesPending += w.responseBytes;
    const written = c.tcp.write(w.requestBytes, (dst, streamOffset) => c.requestGenerator.fill(dst, streamOffset), this.#nowUs);
    // One request is outstanding at a time and the schema caps its size below any send buffer.
    assert(written === w.requestBytes, () => `request of ${w.requestBytes} B did not fit the send buffer (${written} B)`);
  }
}
