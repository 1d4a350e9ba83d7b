export { TcpEndpoint, type TcpIo, type TcpStats, type TcpState, type TcpIdentity } from './endpoint.js';
export { tcpOptionsSchema, defaultTcpOptions, type TcpOptions } from './options.js';
export { SendBuffer } from './send-buffer.js';
export { Reassembly } from './reassembly.js';
export { RttEstimator } from './rtt.js';
export { TcpReceiver, windowScaleFor } from './receiver.js';
export * from './congestion/index.js';
