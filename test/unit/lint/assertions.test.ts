import { ESLint } from 'eslint';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

/*
 * assertions/lazy-message on the real tree: every source file has it on, none
 * breaks it, and an assertion whose message is formatted eagerly, appended to
 * a real file on the simulator's hot path, is an error.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const RULE = 'assertions/lazy-message';

const SOURCES = ['services', 'lib', 'sim', 'cli', 'bench']
  .flatMap((top) => readdirSync(path.join(ROOT, top), { recursive: true, encoding: 'utf8' }).map((rel) => `${top}/${rel.split(path.sep).join('/')}`))
  .filter((file) => /\.ts$/.test(file) && !file.startsWith('lib/codec/gen/'))
  .sort();

let eslint: ESLint;
beforeAll(() => {
  eslint = new ESLint({ cwd: ROOT, overrideConfigFile: `${ROOT}eslint.config.js` });
});

const ruleProblems = (results: ESLint.LintResult[]) => results.flatMap((r) => r.messages.filter((m) => m.ruleId === RULE).map((m) => `${path.relative(ROOT, r.filePath)}:${m.line}`));

async function lintAppended(file: string, snippet: string): Promise<string[]> {
  const real = readFileSync(path.join(ROOT, file), 'utf8');
  return ruleProblems(await eslint.lintText(`${real}\n${snippet}\n`, { filePath: path.join(ROOT, file) }));
}

describe('assertions/lazy-message on the real tree', () => {
  it('is on for every source file, and none breaks it', async () => {
    expect(SOURCES).toEqual(expect.arrayContaining(['lib/tcp/send-buffer.ts', 'lib/runtime/sim/sim-runtime.ts', 'services/acker/core.ts', 'sim/world.ts']));
    for (const file of SOURCES) {
      const config = (await eslint.calculateConfigForFile(path.join(ROOT, file))) as { rules?: Record<string, unknown> } | undefined;
      const entry = config?.rules?.[RULE];
      expect(Array.isArray(entry) ? entry[0] : entry, file).toBe(2);
    }
    expect(ruleProblems(await eslint.lintFiles(SOURCES.map((f) => path.join(ROOT, f))))).toEqual([]);
  });

  it('refuses a message formatted on every call, and takes literals and functions', async () => {
    const file = 'lib/tcp/send-buffer.ts';
    for (const eager of ['`at ${1 + 1}`', "'at ' + String(2)", 'String(3)', "x > 1 ? 'a' : 'b'"]) {
      expect(await lintAppended(file, `export function __check(x: number): void { assert(x > 0, ${eager}); }`), eager).toHaveLength(1);
    }
    for (const lazy of ["'literal'", '`no values`', '() => `at ${1 + 1}`', 'MESSAGE']) {
      expect(await lintAppended(file, `const MESSAGE = 'm';\nexport function __check(x: number): void { assert(x > 0, ${lazy}); }`), lazy).toEqual([]);
    }
  });
});
