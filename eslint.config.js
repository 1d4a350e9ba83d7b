import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** Modules that do I/O, keep time or schedule: none may enter a pure core. */
const IMPURE_MODULES = ['fs', 'net', 'http', 'https', 'http2', 'dgram', 'child_process', 'worker_threads', 'timers', 'timers/promises', 'perf_hooks', 'os', 'cluster', 'readline', 'process']
  .flatMap((m) => [m, `node:${m}`]);
const IMPURE_PACKAGES = ['@nats-io/*', '@opentelemetry/*', 'pino', 'cli-progress', 'commander', 'testcontainers'];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'lib/codec/gen/', 'coverage/', 'results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // Determinism: service cores, state machines and the simulator world get
    // time and randomness injected; they never reach for them.
    files: ['services/*/core.ts', 'services/**/*.machine.ts', 'sim/**/*.ts', 'lib/tcp/**/*.ts', 'lib/link/**/*.ts', 'lib/checkpoint/**/*.ts', 'lib/memory/**/*.ts', 'lib/lease/lease-logic.ts', 'lib/lease/memory-store.ts', 'lib/runtime/sim/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: IMPURE_MODULES.map((name) => ({ name, message: 'pure code: no I/O, timers or wall clock' })), patterns: IMPURE_PACKAGES.map((group) => ({ group: [group], message: 'pure code: no transport, telemetry or process libraries' })) }],
      'no-restricted-globals': ['error',
        { name: 'setTimeout', message: 'pure code: return a setTimer effect' },
        { name: 'setInterval', message: 'pure code: return a setTimer effect' },
        { name: 'setImmediate', message: 'pure code: no scheduling' },
        { name: 'queueMicrotask', message: 'pure code: no scheduling' },
        { name: 'performance', message: 'pure code: time is injected' },
        { name: 'process', message: 'pure code: no process state' },
        { name: 'fetch', message: 'pure code: no I/O' },
        { name: 'crypto', message: 'pure code: randomness comes from the seeded Rng' },
      ],
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'pure code: time is injected (nowUs)' },
        { object: 'Math', property: 'random', message: 'pure code: use the seeded Rng' },
        { object: 'performance', property: 'now', message: 'pure code: time is injected' },
      ],
      'no-restricted-syntax': ['error', { selector: "NewExpression[callee.name='Date']", message: 'pure code: time is injected (nowUs)' }],
    },
  },
);
