import type { TopLevelSpec } from 'vega-lite';
import type { SoakSample } from './sampler.js';

/** Something the soak did to the system, drawn as a vertical rule. */
export interface SoakEvent {
  readonly tS: number;
  readonly kind: 'kill' | 'nats-restart';
  readonly label: string;
}

/** Goodput, memory and event-loop lag over the soak, one panel each, with its kills and NATS restarts marked. */
export function soakSpec(samples: readonly SoakSample[], events: readonly SoakEvent[], title: string): TopLevelSpec {
  const panel = (field: keyof SoakSample, label: string) => ({
    width: 640,
    height: 140,
    layer: [
      { mark: { type: 'line' as const, strokeWidth: 1.4 }, encoding: { x: { field: 'tS', type: 'quantitative' as const, title: 'time (s)' }, y: { field, type: 'quantitative' as const, title: label } } },
      {
        data: { values: events },
        mark: { type: 'rule' as const, strokeDash: [4, 3] },
        encoding: { x: { field: 'tS', type: 'quantitative' as const }, color: { field: 'kind', type: 'nominal' as const, title: 'event', scale: { domain: ['kill', 'nats-restart'], range: ['#c0392b', '#2c7fb8'] } } },
      },
    ],
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    background: 'white',
    data: { values: samples as unknown as Record<string, number>[] },
    vconcat: [panel('goodputMbps', 'goodput, all VMs (Mbit/s)'), panel('rssMiBTotal', 'RSS, all services (MiB)'), panel('lagMsMax', 'event-loop lag, worst (ms)')],
  } as TopLevelSpec;
}
