import { ESLint } from 'eslint';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

/*
 * The determinism ("purity") lint, tested on the real tree: every source file
 * under services/, lib/ and sim/ but the shells is covered, is clean, and
 * fails as soon as any of the known ways around the rule is added to it.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Rule ids of a purity violation: the local plugin's, and the built-in restricted-* rules should the config use them. */
const PURITY_RULES = new Set([
  'purity/no-impure-globals', 'purity/no-impure-imports', 'purity/no-inline-config',
  'no-restricted-imports', 'no-restricted-globals', 'no-restricted-properties', 'no-restricted-syntax',
]);
/** The rules every covered file must have switched on. */
const REQUIRED_RULES = ['purity/no-impure-globals', 'purity/no-impure-imports', 'purity/no-inline-config'];

/** Shell code (does real I/O) and generated code, stated here independently of eslint.config.js. */
const SHELL = [/^services\/[^/]+\/main\.ts$/, /^lib\/runtime\/nats\//, /^lib\/lease\/kv-store\.ts$/, /^lib\/codec\/gen\//];
const isShell = (file: string): boolean => SHELL.some((re) => re.test(file));

/** Every TypeScript source under the covered folders, root-relative with `/`. */
function sourceFiles(): string[] {
  return ['services', 'lib', 'sim']
    .flatMap((top) => readdirSync(path.join(ROOT, top), { recursive: true, encoding: 'utf8' }).map((rel) => `${top}/${rel.split(path.sep).join('/')}`))
    .filter((file) => /\.(?:ts|mts|cts|tsx)$/.test(file))
    .sort();
}

const ALL = sourceFiles();
const COVERED = ALL.filter((file) => !isShell(file));
const SHELLS = ALL.filter(isShell);

let eslint: ESLint;
beforeAll(() => {
  eslint = new ESLint({ cwd: ROOT, overrideConfigFile: `${ROOT}eslint.config.js` });
});

type Problem = { ruleId: string | null; line: number; message: string };

const purityProblems = (messages: readonly { ruleId: string | null; line: number; message: string; fatal?: boolean }[]): Problem[] =>
  messages.filter((m) => m.fatal || (m.ruleId !== null && PURITY_RULES.has(m.ruleId))).map(({ ruleId, line, message }) => ({ ruleId, line, message }));

/** Lint the real text of `file` with `snippet` appended, as that very file. Returns the purity problems and the snippet's first line. */
async function lintWith(file: string, snippet: string): Promise<{ problems: Problem[]; from: number }> {
  const real = readFileSync(path.join(ROOT, file), 'utf8');
  const from = `${real}\n`.split('\n').length;
  const [result] = await eslint.lintText(`${real}\n${snippet}\n`, { filePath: path.join(ROOT, file) });
  return { problems: purityProblems(result!.messages), from };
}

const severity = (entry: unknown): number => {
  const level = Array.isArray(entry) ? entry[0] : entry;
  return level === 'error' ? 2 : level === 'warn' ? 1 : level === 'off' || level === undefined ? 0 : Number(level);
};

/** The import specifier of lib/runtime/nats/index.js (shell code) from `file`. */
function shellSpecifier(file: string): string {
  const rel = path.posix.relative(path.posix.dirname(file), 'lib/runtime/nats/index.js');
  return rel.startsWith('.') ? rel : `./${rel}`;
}

interface Bypass {
  readonly code: string | ((file: string) => string);
  /** Rule ids that must all fire on the snippet; by default any purity rule will do. */
  readonly rules?: readonly string[];
}

const DIRECTIVE = ['purity/no-impure-globals', 'purity/no-inline-config'];

/** Each snippet uses what it brings in; names start with __p so as not to clash with the file's own. */
const BYPASSES: Record<string, Bypass> = {
  // Plain uses.
  'Date.now()': { code: 'export const __p = Date.now();' },
  'Math.random()': { code: 'export const __p = Math.random();' },
  'setTimeout(...)': { code: 'export const __p = setTimeout(() => undefined, 1);' },
  'setInterval(...)': { code: 'export const __p = setInterval(() => undefined, 1);' },
  'setImmediate(...)': { code: 'export const __p = setImmediate(() => undefined);' },
  'queueMicrotask(...)': { code: 'queueMicrotask(() => undefined);' },
  'performance.now()': { code: 'export const __p = performance.now();' },
  'process.env': { code: 'export const __p = process.env.HOME;' },
  'process.hrtime.bigint()': { code: 'export const __p = process.hrtime.bigint();' },
  "fetch('http://…')": { code: "export const __p = fetch('http://example.invalid/');" },
  'crypto.randomUUID()': { code: 'export const __p = crypto.randomUUID();' },
  'crypto.getRandomValues(...)': { code: 'export const __p = crypto.getRandomValues(new Uint8Array(4));' },
  // Through the global object.
  ...Object.fromEntries(['globalThis', 'window', 'self', 'global'].flatMap((g) => [
    [`${g}.Date.now()`, { code: `export const __p = ${g}.Date.now();` }],
    [`${g}.Math.random()`, { code: `export const __p = ${g}.Math.random();` }],
    [`${g}.setTimeout(...)`, { code: `export const __p = ${g}.setTimeout(() => undefined, 1);` }],
    [`${g}.performance.now()`, { code: `export const __p = ${g}.performance.now();` }],
    [`${g}.process.env`, { code: `export const __p = ${g}.process.env;` }],
    [`new ${g}.Date()`, { code: `export const __p = new ${g}.Date();` }],
  ])),
  "globalThis['Date']['now']()": { code: "export const __p = globalThis['Date']['now']();" },
  'globalThis?.Date?.now()': { code: 'export const __p = globalThis?.Date?.now();' },
  'globalThis.globalThis.Date.now()': { code: 'export const __p = globalThis.globalThis.Date.now();' },
  'const g = globalThis; g.Date.now()': { code: 'const __g = globalThis;\nexport const __p = __g.Date.now();' },
  'const { Date: D } = globalThis': { code: 'const { Date: __D } = globalThis;\nexport const __p = __D.now();' },
  // Aliasing.
  'const D = Date; D.now()': { code: 'const __D = Date;\nexport const __p = __D.now();' },
  'const { now } = Date; now()': { code: 'const { now: __now } = Date;\nexport const __p = __now();' },
  'const r = Math.random; r()': { code: 'const __r = Math.random;\nexport const __p = __r();' },
  'const M = Math; M.random()': { code: 'const __M = Math;\nexport const __p = __M.random();' },
  'const { random } = Math': { code: 'const { random: __random } = Math;\nexport const __p = __random();' },
  "Date['now']()": { code: "export const __p = Date['now']();" },
  'Math[name]()': { code: "const __name = 'random';\nexport const __p = Math[__name]!();" },
  '(Date as DateConstructor).now()': { code: 'export const __p = (Date as DateConstructor).now();' },
  'Date.now.call(...)': { code: 'export const __p = Date.now.call(undefined);' },
  "Reflect.get(Date, 'now')": { code: "export const __p = Reflect.get(Date, 'now');" },
  'const t = setTimeout; t(...)': { code: 'const __t = setTimeout;\nexport const __p = __t(() => undefined, 1);' },
  // Ambient declarations that hide a global from scope analysis.
  'declare const Date': { code: 'declare const Date: DateConstructor;\nexport const __p = Date.now();' },
  'declare function setTimeout': { code: 'declare function setTimeout(f: () => void, ms: number): number;\nexport const __p = setTimeout(() => undefined, 1);' },
  'declare const globalThis': { code: 'declare const globalThis: { Date: DateConstructor };\nexport const __p = globalThis.Date.now();' },
  'declare global { … }': { code: 'declare global { var __pNow: () => number }\nexport const __p = globalThis.__pNow();' },
  // Date as a constructor or a function.
  'new Date()': { code: 'export const __p = new Date();' },
  'new Date(0)': { code: 'export const __p = new Date(0);' },
  'Date()': { code: 'export const __p = Date();' },
  'new globalThis.Date(0)': { code: 'export const __p = new globalThis.Date(0);' },
  // Code from strings.
  "new Function('return Date.now()')": { code: "export const __p = new Function('return Date.now()');" },
  "eval('Date.now()')": { code: "export const __p = eval('Date.now()');" },
  "(() => 0).constructor('return Date.now()')": { code: "export const __p = (() => 0).constructor('return Date.now()')();" },
  // Static imports.
  "import { readFileSync } from 'node:fs'": { code: "import { readFileSync as __read } from 'node:fs';\nexport const __p = __read;" },
  "import { readFile } from 'fs/promises'": { code: "import { readFile as __read } from 'fs/promises';\nexport const __p = __read;" },
  "import { setTimeout } from 'node:timers/promises'": { code: "import { setTimeout as __sleep } from 'node:timers/promises';\nexport const __p = __sleep;" },
  "import { performance } from 'node:perf_hooks'": { code: "import { performance as __perf } from 'node:perf_hooks';\nexport const __p = __perf;" },
  "import { hostname } from 'os'": { code: "import { hostname as __host } from 'os';\nexport const __p = __host;" },
  "import process from 'node:process'": { code: "import __process from 'node:process';\nexport const __p = __process;" },
  "import { env } from 'process'": { code: "import { env as __env } from 'process';\nexport const __p = __env;" },
  "import { createRequire } from 'node:module'": { code: "import { createRequire as __cr } from 'node:module';\nexport const __p = __cr;" },
  "export * from 'node:child_process'": { code: "export * from 'node:child_process';" },
  "import pino from 'pino'": { code: "import __pino from 'pino';\nexport const __p = __pino;" },
  "import { connect } from '@nats-io/transport-node'": { code: "import { connect as __connect } from '@nats-io/transport-node';\nexport const __p = __connect;" },
  "import { jserrors } from '@nats-io/jetstream/internal'": { code: "import { jserrors as __j } from '@nats-io/jetstream/internal';\nexport const __p = __j;" },
  "import { Piscina } from 'piscina'": { code: "import { Piscina as __Piscina } from 'piscina';\nexport const __p = __Piscina;" },
  "import { Command } from 'commander'": { code: "import { Command as __Command } from 'commander';\nexport const __p = __Command;" },
  // node:crypto: randomness, or the whole module.
  ...Object.fromEntries(['randomBytes', 'randomUUID', 'randomInt', 'getRandomValues', 'webcrypto'].flatMap((name) => [
    [`import { ${name} } from 'node:crypto'`, { code: `import { ${name} as __c } from 'node:crypto';\nexport const __p = __c;`, rules: ['purity/no-impure-imports'] }],
    [`import { ${name} } from 'crypto'`, { code: `import { ${name} as __c } from 'crypto';\nexport const __p = __c;`, rules: ['purity/no-impure-imports'] }],
  ])),
  "import { createHash, randomBytes } from 'node:crypto'": { code: "import { createHash as __h, randomBytes as __c } from 'node:crypto';\nexport const __p = [__h, __c];", rules: ['purity/no-impure-imports'] },
  "import * as c from 'node:crypto'": { code: "import * as __c from 'node:crypto';\nexport const __p = __c;", rules: ['purity/no-impure-imports'] },
  "import c from 'node:crypto'": { code: "import __c from 'node:crypto';\nexport const __p = __c;", rules: ['purity/no-impure-imports'] },
  "export { randomBytes } from 'node:crypto'": { code: "export { randomBytes as __p } from 'node:crypto';", rules: ['purity/no-impure-imports'] },
  // Dynamic imports and require.
  "import('node:fs')": { code: "export const __p = import('node:fs');" },
  "import('fs')": { code: "export const __p = import('fs');" },
  "import('node:child_process')": { code: "export const __p = import('node:child_process');" },
  "import('node:timers/promises')": { code: "export const __p = import('node:timers/promises');" },
  "import('node:crypto')": { code: "export const __p = import('node:crypto');" },
  "import('@nats-io/transport-node')": { code: "export const __p = import('@nats-io/transport-node');" },
  'import(computed)': { code: "const __m = ['node', 'fs'].join(':');\nexport const __p = import(__m);" },
  "require('node:fs')": { code: "export const __p = require('node:fs');" },
  "require('child_process')": { code: "export const __p = require('child_process');" },
  "import fs = require('fs')": { code: "import __fs = require('fs');\nexport const __p = __fs;" },
  // Shell code, which has the wall clock and I/O.
  "import { wallClock } from '…/lib/runtime/nats/index.js'": {
    code: (file) => `import { wallClock as __wc } from '${shellSpecifier(file)}';\nexport const __p = __wc;`,
    rules: ['purity/no-impure-imports'],
  },
  // eslint directive comments do not switch the rules off, and are themselves errors.
  '// eslint-disable-next-line': { code: '// eslint-disable-next-line\nexport const __p = Date.now();', rules: DIRECTIVE },
  '// eslint-disable-next-line <the purity rules>': {
    code: '// eslint-disable-next-line purity/no-impure-globals, purity/no-impure-imports, no-restricted-properties, no-restricted-globals\nexport const __p = Date.now();',
    rules: DIRECTIVE,
  },
  '// eslint-disable-line': { code: 'export const __p = Date.now(); // eslint-disable-line', rules: DIRECTIVE },
  '/* eslint-disable */': { code: '/* eslint-disable */\nexport const __p = Date.now();', rules: DIRECTIVE },
  "/* eslint purity/no-impure-globals: 'off' */": { code: '/* eslint purity/no-impure-globals: "off" */\nexport const __p = Date.now();', rules: DIRECTIVE },
  '/* eslint-disable purity/no-impure-imports */ on an import': {
    code: "/* eslint-disable purity/no-impure-imports */\nimport { readFileSync as __read } from 'node:fs';\nexport const __p = __read;",
    rules: ['purity/no-impure-imports', 'purity/no-inline-config'],
  },
};

/**
 * Real covered files, each a different kind: a service core, a service's state machine, the TCP library, the
 * simulator. Small ones: every bypass lints every target, and the time goes into parsing the file's own text.
 */
const TARGETS = ['services/netbuffer/core.ts', 'services/checkpointer/epoch.machine.ts', 'lib/tcp/rtt.ts', 'sim/lease-store.ts'];
/** Real shells: a service main and a NATS runtime module (the wall clock). */
const SHELL_TARGETS = ['services/netbuffer/main.ts', 'lib/runtime/nats/clock.ts'];

const snippetFor = (bypass: Bypass, file: string): string => (typeof bypass.code === 'string' ? bypass.code : bypass.code(file));

describe('purity lint on the real tree', () => {
  it('covers every TypeScript file under services/, lib/ and sim/ but the shells', async () => {
    expect(COVERED.length).toBeGreaterThan(60);
    expect(COVERED).toEqual(expect.arrayContaining([
      'services/guest/core.ts', 'services/checkpointer/primary.ts', 'services/checkpointer/staging.ts',
      'services/netbuffer/core.ts', 'services/failover/failover.machine.ts', 'lib/tcp/sender.ts', 'lib/checkpoint/hash.ts', 'lib/lease/memory-store.ts',
      'lib/runtime/sim/sim-runtime.ts', 'lib/config/run-config.ts', 'sim/world.ts',
    ]));
    for (const file of COVERED) {
      const config = await eslint.calculateConfigForFile(path.join(ROOT, file)) as { rules?: Record<string, unknown>; linterOptions?: { noInlineConfig?: boolean } } | undefined;
      expect(config, file).toBeDefined();
      for (const rule of REQUIRED_RULES) expect(severity(config!.rules?.[rule]), `${rule} in ${file}`).toBe(2);
      expect(config!.linterOptions?.noInlineConfig, `noInlineConfig in ${file}`).toBe(true);
    }
  });

  it('does not cover the shells', async () => {
    expect(SHELLS).toEqual(expect.arrayContaining(['services/guest/main.ts', 'services/client/main.ts', 'services/failover/main.ts', 'lib/runtime/nats/shell.ts', 'lib/lease/kv-store.ts']));
    for (const file of SHELLS) {
      const config = await eslint.calculateConfigForFile(path.join(ROOT, file)) as { rules?: Record<string, unknown> } | undefined;
      for (const rule of PURITY_RULES) expect(severity(config?.rules?.[rule]), `${rule} in ${file}`).toBe(0);
    }
  });

  it('finds no purity violation in any covered file', async () => {
    const results = await eslint.lintFiles(COVERED.map((file) => path.join(ROOT, file)));
    expect(results).toHaveLength(COVERED.length);
    const problems = results.flatMap((r) => purityProblems(r.messages).map((m) => `${path.relative(ROOT, r.filePath)}:${m.line} ${m.ruleId}: ${m.message}`));
    expect(problems).toEqual([]);
  });

  it('accepts deterministic uses of Date, Math, Buffer and look-alike names in a covered file', async () => {
    const code = [
      'export const __a = Math.floor(Math.max(1, 2) / Math.PI) + Date.UTC(2020, 0) + Date.parse("2020-01-01T00:00:00Z");',
      'const { floor: __floor, min: __min } = Math;',
      'export const __b = [1.5].map(Math.ceil).map(__floor).map((x) => __min(x, 1));',
      'export const __c = (x: unknown): x is Date => x instanceof Date;',
      'export type __T = ReturnType<typeof setTimeout> | Date | typeof globalThis.performance;',
      'export const __d = Buffer.from("ab").toString("hex") + Buffer.alloc(2).length;',
      'export function __e(window: number, performance: { now(): number }): number { return window + performance.now(); }',
      "import { createHash as __createHash } from 'node:crypto';",
      "export const __f = __createHash('sha256').update('x').digest('hex');",
    ].join('\n');
    for (const file of TARGETS) expect((await lintWith(file, code)).problems, file).toEqual([]);
  });
});

describe('purity lint catches each bypass appended to a real covered file', () => {
  it('the target files are covered files', () => {
    for (const file of TARGETS) expect(COVERED, file).toContain(file);
  });

  for (const [what, bypass] of Object.entries(BYPASSES)) {
    it.each(TARGETS)(`${what.replace(/%/g, '%%')} in %s`, async (file) => {
      const { problems, from } = await lintWith(file, snippetFor(bypass, file));
      expect(problems.filter((p) => p.line < from), 'the real text is clean').toEqual([]);
      expect(problems.length, JSON.stringify(problems)).toBeGreaterThan(0);
      const fired = new Set(problems.map((p) => p.ruleId));
      for (const rule of bypass.rules ?? []) expect(fired, `${rule} must fire: ${JSON.stringify(problems)}`).toContain(rule);
    });
  }
});

describe('purity lint exempts the shells', () => {
  for (const [what, bypass] of Object.entries(BYPASSES)) {
    it.each(SHELL_TARGETS)(`${what.replace(/%/g, '%%')} in %s`, async (file) => {
      expect((await lintWith(file, snippetFor(bypass, file))).problems).toEqual([]);
    });
  }
});

describe('node:crypto in pure code', () => {
  const FILE = 'lib/tcp/sender.ts';

  it("accepts import { createHash } from 'node:crypto' (and from 'crypto')", async () => {
    for (const module of ['node:crypto', 'crypto']) {
      const code = `import { createHash as __h } from '${module}';\nexport const __p = __h('sha256').digest();`;
      expect((await lintWith(FILE, code)).problems, module).toEqual([]);
    }
  });

  it('accepts a type-only import of anything from it (erased: nothing of the module runs), not a value import beside it', async () => {
    const typeOnly = "import type { CipherGCM } from 'node:crypto';\nexport const __p = (c: CipherGCM) => c;";
    expect((await lintWith(FILE, typeOnly)).problems).toEqual([]);
    const { problems, from } = await lintWith(FILE, "import { type CipherGCM, randomBytes } from 'node:crypto';\nexport const __p = (c: CipherGCM) => [c, randomBytes];");
    expect(problems.map((p) => [p.ruleId, p.line])).toEqual([['purity/no-impure-imports', from]]);
  });

  it('accepts lib/checkpoint/hash.ts, which hashes with it', async () => {
    expect(readFileSync(path.join(ROOT, 'lib/checkpoint/hash.ts'), 'utf8')).toMatch(/^import \{ createHash \} from 'node:crypto';$/m);
    expect((await lintWith('lib/checkpoint/hash.ts', '')).problems).toEqual([]);
  });

  it('accepts lib/checkpoint/checksum.ts, which takes its cipher for the GMAC checksum', async () => {
    expect(readFileSync(path.join(ROOT, 'lib/checkpoint/checksum.ts'), 'utf8')).toMatch(/^import \{ createCipheriv \} from 'node:crypto';$/m);
    expect((await lintWith('lib/checkpoint/checksum.ts', '')).problems).toEqual([]);
  });

  it.each([
    ["import { randomBytes } from 'node:crypto'", "import { randomBytes } from 'node:crypto';\nexport const __p = randomBytes;"],
    ["import * as c from 'node:crypto'", "import * as c from 'node:crypto';\nexport const __p = c.createHash;"],
  ])('rejects %s', async (_what, code) => {
    const { problems, from } = await lintWith(FILE, code);
    expect(problems.map((p) => [p.ruleId, p.line])).toEqual([['purity/no-impure-imports', from]]);
  });
});
