export * from './model.js';
export { spanIdOf, traceIdOf, traceKeyText } from './ids.js';
export { NO_SAMPLER, sampler, strideBytesFor, type Sampler } from './sampling.js';
export { TRACING_OFF, tracingOptionsFromConfig, type TracingOptions } from './options.js';
export { HeldBytesTracer } from './held-bytes.js';
export { DeliveryTracer, EmitTracer } from './endpoints.js';
export type { EffectSink } from './held-bytes.js';
