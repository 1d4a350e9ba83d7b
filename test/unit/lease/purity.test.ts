import { ESLint } from 'eslint';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Everything in lib/lease but the KV store (shell code) must be usable from a pure core. */
const PURE = ['types.ts', 'errors.ts', 'holder.ts', 'take-over.ts', 'memory-store.ts', 'live-lease.ts', 'index.ts'];

describe('lib/lease purity', () => {
  it('the list covers every source file of lib/lease but the KV store', () => {
    const sources = readdirSync(`${ROOT}lib/lease`).filter((f) => f.endsWith('.ts') && f !== 'kv-store.ts');
    expect([...sources].sort()).toEqual([...PURE].sort());
  });

  it('the holder, the take-over functions and the in-memory store pass the purity lint that guards cores', async () => {
    const eslint = new ESLint({ cwd: ROOT, overrideConfigFile: `${ROOT}eslint.config.js` });
    for (const file of PURE) {
      const path = `${ROOT}lib/lease/${file}`;
      // At its real path, so that its relative imports resolve to the files they name.
      const [result] = await eslint.lintText(readFileSync(path, 'utf8'), { filePath: path });
      expect(result!.messages.map((m) => `${m.ruleId}: ${m.message}`), file).toEqual([]);
    }
  });

  it('the lint sees a lease file that imports the KV store as impure', async () => {
    const eslint = new ESLint({ cwd: ROOT, overrideConfigFile: `${ROOT}eslint.config.js` });
    const path = `${ROOT}lib/lease/index.ts`;
    const code = `${readFileSync(path, 'utf8')}\nexport * from './kv-store.js';\n`;
    const [result] = await eslint.lintText(code, { filePath: path });
    expect(result!.messages.map((m) => m.ruleId)).toContain('purity/no-impure-imports');
  });

  it('the index does not pull in the KV store', () => {
    expect(readFileSync(`${ROOT}lib/lease/index.ts`, 'utf8')).not.toMatch(/from '\.\/kv-store/);
  });
});
