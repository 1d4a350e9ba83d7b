import { describe, expect, it } from 'vitest';
import { envSwitch } from '../../../cli/commands/service.js';
import { ConfigError } from '../../../lib/errors.js';

describe('an on/off environment variable (SPECULA_TRACE)', () => {
  it('is off unset, empty or false-like, on true-like, whatever the case and spaces', () => {
    for (const v of [undefined, '', '0', 'false', 'FALSE', 'off', 'no', ' 0 ']) expect(envSwitch('X', v), String(v)).toBe(false);
    for (const v of ['1', 'true', 'True', 'on', 'yes', ' on ']) expect(envSwitch('X', v), v).toBe(true);
  });

  it('refuses anything else, naming the variable, rather than take it for on', () => {
    expect(() => envSwitch('SPECULA_TRACE', 'maybe')).toThrow(ConfigError);
    expect(() => envSwitch('SPECULA_TRACE', 'maybe')).toThrow(/SPECULA_TRACE=maybe/);
  });
});
