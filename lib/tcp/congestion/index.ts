import { Cubic } from './cubic.js';
import { NewReno } from './newreno.js';
import { Racc } from './racc.js';
import type { CongestionControl, CongestionControlName, CongestionParams } from './types.js';

export type { CongestionControl, CongestionControlName, CongestionParams } from './types.js';
export { NewReno } from './newreno.js';
export { Cubic } from './cubic.js';
export { Racc, RACC_WINDOW_BYTES } from './racc.js';

export function createCongestionControl(name: CongestionControlName, params: CongestionParams): CongestionControl {
  switch (name) {
    case 'newreno':
      return new NewReno(params);
    case 'cubic':
      return new Cubic(params);
    case 'racc':
      return new Racc(params);
  }
}
