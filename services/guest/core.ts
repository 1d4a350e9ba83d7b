import type { Segment } from '../../lib/codec/messages.js';
import type { Core, Effect, Input } from '../../lib/runtime/types.js';
import { TcpEndpoint, type TcpOptions } from '../../lib/tcp/index.js';
import { ByteGenerator, StreamVerifier } from './workload/byte-generator.js';
import { STREAM_CLIENT_TO_SERVER, STREAM_SERVER_TO_CLIENT, type Workload } from './workload/workload.js';

export interface GuestCoreOptions {
  readonly vmId: string;
  readonly seed: number;
  readonly tcp: TcpOptions;
  readonly workload: Workload;
  /** Where the guest's segments go (the wire in native mode). */
  readonly txSubject: string;
  /** Where segments for the guest arrive. */
  readonly rxSubject: string;
}

export interface GuestStats {
  bytesWritten: number;
  requestsServed: number;
  requestBytesReceived: number;
  requestStreamVerified: boolean;
}

/**
 * The protected machine: a TCP server running a workload. In native mode its
 * segments go straight to the wire.
 */
export class GuestCore implements Core {
  readonly name = 'guest';
  readonly subscriptions: readonly string[];
  readonly tcp: TcpEndpoint;
  readonly stats: GuestStats = { bytesWritten: 0, requestsServed: 0, requestBytesReceived: 0, requestStreamVerified: true };
  readonly #out: Effect[][] = [];
  readonly #generator: ByteGenerator;
  readonly #requestVerifier: StreamVerifier;
  #nowUs = 0;
  /** Response bytes owed but not yet accepted by the send buffer. */
  #responseBacklogBytes = 0;

  constructor(readonly options: GuestCoreOptions) {
    this.subscriptions = [options.rxSubject];
    this.#generator = new ByteGenerator(options.seed, STREAM_SERVER_TO_CLIENT);
    this.#requestVerifier = new StreamVerifier(new ByteGenerator(options.seed, STREAM_CLIENT_TO_SERVER));
    // Request/response servers set TCP_NODELAY (as memcached, redis and netperf's TCP_RR do):
    // Nagle would hold each response's last short segment for the client's delayed ACK.
    const tcp = options.workload.kind === 'rr' ? { ...options.tcp, nagle: false } : options.tcp;
    this.tcp = new TcpEndpoint(tcp, { vmId: options.vmId, connId: 1, timerPrefix: 'tcp' }, {
      transmit: (seg) => this.#emit({ kind: 'send', subject: options.txSubject, msg: seg }),
      setTimer: (name, atUs) => this.#emit({ kind: 'setTimer', name, atUs }),
      cancelTimer: (name) => this.#emit({ kind: 'cancelTimer', name }),
      deliver: (chunk) => this.#onRequestBytes(chunk),
      connected: () => this.#pump(),
      sendSpaceFreed: () => this.#pump(),
      peerClosed: () => undefined,
    });
  }

  handle(input: Input, nowUs: number): Effect[] {
    const effects: Effect[] = [];
    this.#out.push(effects);
    this.#nowUs = nowUs;
    try {
      switch (input.kind) {
        case 'start':
          this.tcp.listen();
          break;
        case 'message':
          this.tcp.onSegment(input.msg as Segment, nowUs);
          break;
        case 'timer':
          this.tcp.onTimer(input.name, nowUs);
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

  #onRequestBytes(chunk: Uint8Array): void {
    this.#requestVerifier.check(chunk);
    this.stats.requestStreamVerified = this.#requestVerifier.ok;
    const w = this.options.workload;
    if (w.kind !== 'rr') return;
    const before = Math.floor(this.stats.requestBytesReceived / w.requestBytes);
    this.stats.requestBytesReceived += chunk.length;
    const completed = Math.floor(this.stats.requestBytesReceived / w.requestBytes) - before;
    this.stats.requestsServed += completed;
    this.#responseBacklogBytes += completed * w.responseBytes;
    this.#pump();
  }

  /** Writes workload bytes while the send buffer has room. */
  #pump(): void {
    if (this.tcp.state !== 'established') return;
    const w = this.options.workload;
    const want = w.kind === 'bulk' ? (w.totalBytes === 0 ? Number.MAX_SAFE_INTEGER : w.totalBytes - this.stats.bytesWritten) : this.#responseBacklogBytes;
    if (want > 0) {
      const n = this.tcp.write(want, (dst, offset) => this.#generator.fill(dst, offset), this.#nowUs);
      this.stats.bytesWritten += n;
      if (w.kind === 'rr') this.#responseBacklogBytes -= n;
    }
    if (w.kind === 'bulk' && w.totalBytes > 0 && this.stats.bytesWritten === w.totalBytes) this.tcp.close(this.#nowUs);
  }
}
