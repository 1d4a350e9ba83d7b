/**
 * Whether a process exports traces: an OTLP endpoint in the environment, or
 * --trace; never with OTEL_SDK_DISABLED=true. Apart from otel.ts so that a
 * process that does not trace never loads the OTel SDK.
 */
export function tracingWanted(env: Readonly<Record<string, string | undefined>>, flag: boolean): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').toLowerCase() === 'true') return false;
  return flag || Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT) || Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}
