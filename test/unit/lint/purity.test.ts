import { ESLint } from 'eslint';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CORE = 'services/example/core.ts';
const MACHINE = 'services/example/epoch.machine.ts';
const MAIN = 'services/example/main.ts';

let eslint: ESLint;
beforeAll(() => {
  eslint = new ESLint({ cwd: ROOT, overrideConfigFile: `${ROOT}eslint.config.js` });
});

/** Messages of every rule that fired on `code` as if it were `filePath`. */
async function lint(code: string, filePath: string): Promise<{ ruleId: string | null; severity: number; line: number }[]> {
  const [result] = await eslint.lintText(code, { filePath: `${ROOT}${filePath}` });
  return result!.messages.map(({ ruleId, severity, line }) => ({ ruleId, severity, line }));
}

/** Each snippet uses what it brings in, so that only the purity rules can object. */
const IMPURE: Record<string, { code: string; rule: string }> = {
  'Date.now()': { code: 'export const t = Date.now();\n', rule: 'no-restricted-properties' },
  'Math.random()': { code: 'export const r = Math.random();\n', rule: 'no-restricted-properties' },
  'setTimeout(...)': { code: 'export const h = setTimeout(() => undefined, 10);\n', rule: 'no-restricted-globals' },
  "import { readFileSync } from 'node:fs'": { code: "import { readFileSync } from 'node:fs';\nexport const f = readFileSync;\n", rule: 'no-restricted-imports' },
  'new Date()': { code: 'export const d = new Date();\n', rule: 'no-restricted-syntax' },
};

describe('lint purity rule', () => {
  it('accepts a pure core file', async () => {
    expect(await lint('export const add = (a: number, b: number): number => a + b;\n', CORE)).toEqual([]);
  });

  for (const [what, { code, rule }] of Object.entries(IMPURE)) {
    it(`rejects ${what} in a service core`, async () => {
      expect(await lint(code, CORE)).toEqual([{ ruleId: rule, severity: 2, line: 1 }]);
    });

    it(`allows ${what} in a service main.ts`, async () => {
      expect(await lint(code, MAIN)).toEqual([]);
    });
  }

  it('rejects Math.random() in a state machine', async () => {
    expect((await lint(IMPURE['Math.random()']!.code, MACHINE)).map((m) => m.ruleId)).toEqual(['no-restricted-properties']);
  });

  it('rejects Date.now() in the simulator world and in the TCP library', async () => {
    for (const file of ['sim/example.ts', 'lib/tcp/example.ts', 'lib/runtime/sim/example.ts']) {
      expect((await lint(IMPURE['Date.now()']!.code, file)).map((m) => m.ruleId), file).toEqual(['no-restricted-properties']);
    }
  });

  it('rejects transport and logging packages in a core', async () => {
    const code = "import pino from 'pino';\nimport { connect } from '@nats-io/transport-node';\nexport const x = [pino, connect];\n";
    const rules = (await lint(code, CORE)).map((m) => m.ruleId);
    expect(rules).toEqual(['no-restricted-imports', 'no-restricted-imports']);
  });
});
