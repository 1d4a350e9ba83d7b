import { assert } from '../../lib/assert.js';
import type { Segment } from '../../lib/codec/messages.js';
import type { Core, Effect, Input } from '../../lib/runtime/types.js';
import { TcpEndpoint, type TcpOptions } from '../../lib/tcp/index.js';
import { DeliveryTracer } from '../../lib/tracing/endpoints.js';
import type { TracingOptions } from '../../lib/tracing/options.js';
import { ByteGenerator, StreamVerifier } from '../guest/workload/byte-generator.js';
import { STREAM_CLIENT_TO_SERVER, STREAM_SERVER_TO_CLIENT, type Workload } from '../guest/workload/workload.js';

/** The one connection a run has (the guest's is connection 1 too). */
const CONN_ID = 1;

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
  connectedAtUs: number | null;
  bytesDelivered: number;
  lastDeliveryUs: number;
  streamVerified: boolean;
  firstMismatchOffset: number | null;
  peerClosedAtUs: number | null;
  requestsCompleted: number;
  latenciesUs: number[];
  /** Bytes delivered per timeline bin, from t = 0. */
  deliveredPerBin: number[];
}

const TIMER_THINK = 'client.think';

/**
 * The remote peer: opens the connection, verifies every byte it receives
 * against the workload generator and, for request/response, issues requests
 * one at a time and measures each one's latency.
 */
export class ClientCore implements Core {
  readonly name = 'client';
  readonly subscriptions: readonly string[];
  readonly tcp: TcpEndpoint;
  readonly stats: ClientStats = {
    connectedAtUs: null,
    bytesDelivered: 0,
    lastDeliveryUs: 0,
    streamVerified: true,
    firstMismatchOffset: null,
    peerClosedAtUs: null,
    requestsCompleted: 0,
    latenciesUs: [],
    deliveredPerBin: [],
  };
  readonly #out: Effect[][] = [];
  readonly #spanSink = { push: (e: Effect) => this.#emit(e) };
  readonly #verifier: StreamVerifier;
  readonly #deliveries: DeliveryTracer | null;
  readonly #requestGenerator: ByteGenerator;
  #nowUs = 0;
  #requestSentUs = 0;
  #responseBytesPending = 0;

  constructor(readonly options: ClientCoreOptions) {
    this.subscriptions = [options.rxSubject];
    this.#verifier = new StreamVerifier(new ByteGenerator(options.seed, STREAM_SERVER_TO_CLIENT));
    this.#requestGenerator = new ByteGenerator(options.seed, STREAM_CLIENT_TO_SERVER);
    this.#deliveries = options.tracing?.sampler === undefined ? null : new DeliveryTracer(options.vmId, options.tracing.sampler, CONN_ID);
    this.tcp = new TcpEndpoint(options.tcp, { vmId: options.vmId, connId: CONN_ID, timerPrefix: 'tcp' }, {
      transmit: (seg) => this.#emit({ kind: 'send', subject: options.txSubject, msg: seg }),
      setTimer: (name, atUs) => this.#emit({ kind: 'setTimer', name, atUs }),
      cancelTimer: (name) => this.#emit({ kind: 'cancelTimer', name }),
      deliver: (chunk) => this.#onData(chunk),
      connected: () => this.#onConnected(),
      sendSpaceFreed: () => undefined,
      peerClosed: () => {
        this.stats.peerClosedAtUs = this.#nowUs;
      },
    });
  }

  handle(input: Input, nowUs: number): Effect[] {
    const effects: Effect[] = [];
    this.#out.push(effects);
    this.#nowUs = nowUs;
    try {
      switch (input.kind) {
        case 'start':
          this.tcp.connect(nowUs);
          break;
        case 'message': {
          const seg = input.msg as Segment;
          if (this.#deliveries !== null && seg.payload.length > 0) this.#deliveries.arrived(seg.term, seg.seq - 1, seg.seq - 1 + seg.payload.length);
          this.tcp.onSegment(seg, nowUs);
          break;
        }
        case 'timer':
          if (input.name === TIMER_THINK) this.#sendRequest();
          else this.tcp.onTimer(input.name, nowUs);
          break;
      }
    } finally {
      this.#out.pop();
    }
    return effects;
  }

  #emit(effect: Effect): void {
    this.#out[this.#out.length - 1]!.push(effect);
  }

  #onConnected(): void {
    this.stats.connectedAtUs = this.#nowUs;
    if (this.options.workload.kind === 'rr') this.#sendRequest();
  }

  #onData(chunk: Uint8Array): void {
    this.#deliveries?.delivered(this.stats.bytesDelivered, this.stats.bytesDelivered + chunk.length, this.#nowUs, this.#spanSink);
    this.#verifier.check(chunk);
    this.stats.streamVerified = this.#verifier.ok;
    this.stats.firstMismatchOffset = this.#verifier.firstMismatchOffset;
    this.stats.bytesDelivered += chunk.length;
    this.stats.lastDeliveryUs = this.#nowUs;
    const bin = Math.floor(this.#nowUs / this.options.timelineBinUs);
    if (bin < this.options.timelineBins) {
      const timeline = this.stats.deliveredPerBin;
      while (timeline.length <= bin) timeline.push(0);
      timeline[bin]! += chunk.length;
    }
    const w = this.options.workload;
    if (w.kind !== 'rr') return;
    this.#responseBytesPending -= chunk.length;
    if (this.#responseBytesPending > 0) return;
    this.stats.requestsCompleted++;
    if (this.stats.latenciesUs.length < this.options.maxLatencySamples) this.stats.latenciesUs.push(this.#nowUs - this.#requestSentUs);
    if (w.thinkTimeUs > 0) this.#emit({ kind: 'setTimer', name: TIMER_THINK, atUs: this.#nowUs + w.thinkTimeUs });
    else this.#sendRequest();
  }

  #sendRequest(): void {
    const w = this.options.workload;
    if (w.kind !== 'rr') return;
    this.#requestSentUs = this.#nowUs;
    this.#responseBytesPending += w.responseBytes;
    const written = this.tcp.write(w.requestBytes, (dst, streamOffset) => this.#requestGenerator.fill(dst, streamOffset), this.#nowUs);
    // One request is outstanding at a time and the schema caps its size below any send buffer.
    assert(written === w.requestBytes, `request of ${w.requestBytes} B did not fit the send buffer (${written} B)`);
  }
}
