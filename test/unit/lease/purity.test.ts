import { ESLint } from 'eslint';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Everything in lib/lease but the KV store (shell code) must be usable from a pure core. */
const PURE = ['types.ts', 'errors.ts', 'holder.ts', 'take-over.ts', 'memory-store.ts', 'index.ts'];

describe('lib/lease purity', () => {
  it('the list covers every source file of lib/lease but the KV store', () => {
    const sources = readdirSync(`${ROOT}lib/lease`).filter((f) => f.endsWith('.ts') && f !== 'kv-store.ts');
    expect([...sources].sort()).toEqual([...PURE].sort());
  });

  it('the holder, the take-over functions and the in-memory store pass the purity lint that guards cores', async () => {
    const eslint = new ESLint({ cwd: ROOT, overrideConfigFile: `${ROOT}eslint.config.js` });
    for (const file of PURE) {
      const code = readFileSync(`${ROOT}lib/lease/${file}`, 'utf8');
      // Linted as if it lived in lib/tcp, a folder the purity rules cover.
      const [result] = await eslint.lintText(code, { filePath: `${ROOT}lib/tcp/lease-${file}` });
      expect(result!.messages.map((m) => `${m.ruleId}: ${m.message}`), file).toEqual([]);
    }
  });

  it('the index does not pull in the KV store', () => {
    expect(readFileSync(`${ROOT}lib/lease/index.ts`, 'utf8')).not.toMatch(/from '\.\/kv-store/);
  });
});
