export { TcpEndpoint, type TcpIo, type TcpStats, type TcpState, type TcpIdentity, type SendRing } from './endpoint.js';
export { TcpSender, type SenderHost, type SenderOptions, type SenderStats, type AckInfo } from './sender.js';
export { tcpOptionsSchema, defaultTcpOptions, type TcpOptions } from './options.js';
export { SendBuffer } from './send-buffer.js';
export { Reassembly } from './reassembly.js';
export { RttEstimator } from './rtt.js';
export { TcpReceiver, windowScaleFor } from './receiver.js';
export * from './congestion/index.js';
export {
  TCP_SNAPSHOT_VERSION,
  type TcpEndpointSnapshot,
  type TcpSenderSnapshot,
  type TcpReceiverSnapshot,
  type SendBufferSnapshot,
  type ReassemblyPieceSnapshot,
  type RttSnapshot,
  type CongestionSnapshot,
  type NewRenoSnapshot,
  type CubicSnapshot,
  type RaccSnapshot,
} from './snapshot.js';
