import { TcpEndpoint, type SendRing, type TcpIo, type TcpOptions } from '../../lib/tcp/index.js';
import { ByteGenerator, StreamVerifier } from './workload/byte-generator.js';
import { STREAM_CLIENT_TO_SERVER, STREAM_SERVER_TO_CLIENT, streamName, type ConnectionWorkload } from './workload/workload.js';

/** What a checkpoint keeps of a connection's application besides its TCP state. */
export interface ConnectionAppState {
  bytesWritten: number;
  requestBytesReceived: number;
  requestsServed: number;
  responseBacklogBytes: number;
}

export interface GuestConnectionOptions {
  readonly vmId: string;
  readonly seed: number;
  readonly connId: number;
  readonly tcp: TcpOptions;
  /** TSO segments towards a host side that re-segments them (GuestVmOptions.tsoBytes); absent: one MSS each. */
  readonly tsoBytes?: number;
  readonly workload: ConnectionWorkload;
  /** Connection 1's timers keep the plain prefix, as a guest of one connection always had. */
  readonly timerPrefix: string;
}

/**
 * One server connection of the guest and the application behind it: a bulk
 * sender or a request/response server, with its send ring in guest memory.
 * The VM owns the clock and the effects; this owns the bytes.
 */
export class GuestConnection {
  readonly tcp: TcpEndpoint;
  readonly app: ConnectionAppState = { bytesWritten: 0, requestBytesReceived: 0, requestsServed: 0, responseBacklogBytes: 0 };
  readonly #generator: ByteGenerator;
  readonly #requestVerifier: StreamVerifier;

  constructor(
    readonly options: GuestConnectionOptions,
    io: Omit<TcpIo, 'deliver' | 'connected' | 'sendSpaceFreed'>,
    ring: SendRing,
    /** Request bytes at offset `streamOffset` of the request stream: the VM writes them into its memory. */
    readonly onRequestBytes: (chunk: Uint8Array, streamOffset: number) => void,
    nowUs: () => number,
  ) {
    this.#generator = new ByteGenerator(options.seed, streamName(STREAM_SERVER_TO_CLIENT, options.connId));
    this.#requestVerifier = new StreamVerifier(new ByteGenerator(options.seed, streamName(STREAM_CLIENT_TO_SERVER, options.connId)));
    // Request/response servers set TCP_NODELAY (as memcached, redis and netperf's TCP_RR do):
    // Nagle would hold each response's last short segment for the client's delayed ACK.
    const tcp = { ...options.tcp, ...(options.workload.kind === 'rr' ? { nagle: false } : {}), ...(options.tsoBytes !== undefined ? { tsoBytes: options.tsoBytes } : {}) };
    this.tcp = new TcpEndpoint(
      tcp,
      { vmId: options.vmId, connId: options.connId, timerPrefix: options.timerPrefix },
      {
        ...io,
        deliver: (chunk) => this.#onRequest(chunk, nowUs()),
        connected: () => this.pump(nowUs()),
        sendSpaceFreed: () => this.pump(nowUs()),
      },
      ring,
    );
  }

  get requestStreamVerified(): boolean {
    return this.#requestVerifier.ok;
  }

  /** Timers this connection may have set. */
  timerNames(): string[] {
    return [this.tcp.sender.rtoTimer, this.tcp.sender.persistTimer, `${this.options.timerPrefix}.delack`];
  }

  /** Takes a checkpoint's application counters (the stream bytes themselves are in guest memory). */
  restoreApp(app: ConnectionAppState): void {
    Object.assign(this.app, app);
    this.#requestVerifier.bytesVerified = app.requestBytesReceived;
  }

  #onRequest(chunk: Uint8Array, nowUs: number): void {
    this.#requestVerifier.check(chunk);
    this.onRequestBytes(chunk, this.app.requestBytesReceived);
    const w = this.options.workload;
    if (w.kind !== 'rr') return;
    const before = Math.floor(this.app.requestBytesReceived / w.requestBytes);
    this.app.requestBytesReceived += chunk.length;
    const completed = Math.floor(this.app.requestBytesReceived / w.requestBytes) - before;
    this.app.requestsServed += completed;
    this.app.responseBacklogBytes += completed * w.responseBytes;
    this.pump(nowUs);
  }

  /** Writes workload bytes while the send buffer has room. */
  pump(nowUs: number): void {
    if (this.tcp.state !== 'established') return;
    const w = this.options.workload;
    const want = w.kind === 'bulk' ? (w.totalBytes === 0 ? Number.MAX_SAFE_INTEGER : w.totalBytes - this.app.bytesWritten) : this.app.responseBacklogBytes;
    if (want > 0) {
      const n = this.tcp.write(want, (dst, offset) => this.#generator.fill(dst, offset), nowUs);
      this.app.bytesWritten += n;
      if (w.kind === 'rr') this.app.responseBacklogBytes -= n;
    }
    if (w.kind === 'bulk' && w.totalBytes > 0 && this.app.bytesWritten === w.totalBytes) this.tcp.close(nowUs);
  }
}
