/**
 * Determinism ("purity") rules for service cores, state machines, the
 * simulator and the libraries they use: no I/O, no timers or scheduling, no
 * wall clock, no randomness, no process or environment state. Time and
 * randomness are injected (nowUs, the seeded Rng); I/O is the shells' job.
 *
 * The rules look at what a name refers to (scope analysis), not at how the
 * source spells it, so `globalThis.Date.now()`, `const D = Date; D.now()`,
 * `const { now } = Date` and `new globalThis.Date()` are all caught:
 *
 *  - purity/no-impure-globals: timers, clocks, randomness, process, I/O
 *    globals, reached directly, through a global object (globalThis, window,
 *    self, global) or by aliasing. Date and Math may only be used through
 *    their pure static members (Math.floor, Date.UTC, `instanceof Date`).
 *  - purity/no-impure-imports: static and dynamic imports, `export … from`
 *    and `import x = require()` of I/O, timer and process modules and
 *    packages; of node:crypto anything but a named `createHash` or `createCipheriv`; and of the
 *    shell files (a core may not reach the wall clock through a shell module).
 *  - purity/no-inline-config: eslint directive comments. The config also sets
 *    `linterOptions.noInlineConfig` for pure files, so the directives have no
 *    effect; this rule makes them an error instead of a warning.
 *
 * Plain ESM, no dependencies beyond ESLint itself.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the folder of eslint.config.js, which `files` globs are relative to. */
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Node modules that do I/O, keep time, schedule, or expose the process or the VM. Any subpath (fs/promises) too. */
export const IMPURE_MODULES = [
  'fs', 'net', 'http', 'https', 'http2', 'dgram', 'child_process', 'worker_threads', 'timers', 'timers/promises', 'perf_hooks', 'os', 'cluster', 'readline', 'process',
  'dns', 'tls', 'tty', 'vm', 'module', 'inspector', 'async_hooks', 'repl', 'v8', 'wasi', 'trace_events',
];
/** Transport, telemetry, CLI and process libraries. `@scope/*` is any package of the scope. */
export const IMPURE_PACKAGES = ['@nats-io/*', '@opentelemetry/*', 'pino', 'cli-progress', 'commander', 'testcontainers', '@testcontainers/*', 'piscina'];
/**
 * What a pure file may take from node:crypto: hashing, and a cipher for the
 * GMAC checksum; both are functions of their arguments (the key and nonce
 * are the caller's, and randomness stays out of reach).
 */
const CRYPTO_ALLOWED = new Set(['createHash', 'createCipheriv']);

const MSG = {
  time: 'pure code: time is injected (nowUs)',
  timer: 'pure code: no timers or scheduling; return a setTimer effect',
  random: 'pure code: use the seeded Rng',
  process: 'pure code: no process or environment state',
  io: 'pure code: no I/O',
  gc: 'pure code: garbage collection timing is not deterministic',
  locale: 'pure code: locale and time zone come from the environment',
  code: 'pure code: no code from strings (it escapes these checks)',
  cjs: 'pure code is ESM: no require or module',
  memory: 'pure code: uninitialised memory is not deterministic',
};

/** Globals a pure file may not touch at all. */
const BANNED_GLOBALS = new Map([
  ['setTimeout', MSG.timer], ['setInterval', MSG.timer], ['setImmediate', MSG.timer],
  ['clearTimeout', MSG.timer], ['clearInterval', MSG.timer], ['clearImmediate', MSG.timer],
  ['queueMicrotask', MSG.timer], ['requestAnimationFrame', MSG.timer], ['requestIdleCallback', MSG.timer],
  ['MessageChannel', MSG.timer], ['MessagePort', MSG.timer], ['BroadcastChannel', MSG.timer], ['Worker', MSG.timer],
  ['performance', MSG.time], ['Temporal', MSG.time],
  ['crypto', MSG.random],
  ['process', MSG.process], ['navigator', MSG.process],
  ['fetch', MSG.io], ['WebSocket', MSG.io], ['EventSource', MSG.io], ['XMLHttpRequest', MSG.io], ['console', MSG.io],
  ['WeakRef', MSG.gc], ['FinalizationRegistry', MSG.gc],
  ['Intl', MSG.locale],
  ['eval', MSG.code], ['Function', MSG.code],
  ['require', MSG.cjs], ['module', MSG.cjs],
]);

/**
 * Globals usable only through static members other than the banned ones.
 * `construct`: whether calling or constructing the global itself is allowed.
 */
const NAMESPACES = new Map([
  ['Date', { banned: new Map([['now', MSG.time]]), construct: false, message: MSG.time }],
  ['Math', { banned: new Map([['random', MSG.random]]), construct: false, message: MSG.random }],
  ['Buffer', { banned: new Map([['allocUnsafe', MSG.memory], ['allocUnsafeSlow', MSG.memory]]), construct: true, message: MSG.memory }],
  ['AbortSignal', { banned: new Map([['timeout', MSG.timer]]), construct: true, message: MSG.timer }],
]);

/** Names under which the global object itself is reachable. */
const GLOBAL_OBJECTS = new Set(['globalThis', 'window', 'self', 'global']);

/** Whether the global `name` is one the rule looks at. */
const interesting = (name) => BANNED_GLOBALS.has(name) || NAMESPACES.has(name) || GLOBAL_OBJECTS.has(name);

/** Parents that make an identifier a type, which has no run-time effect. */
const TYPE_PARENTS = new Set(['TSTypeReference', 'TSInterfaceHeritage', 'TSClassImplements', 'TSTypeQuery', 'TSQualifiedName', 'TSImportType']);

/** Expressions that pass their operand's value through unchanged. */
const TRANSPARENT = new Set(['ChainExpression', 'TSAsExpression', 'TSSatisfiesExpression', 'TSNonNullExpression', 'TSTypeAssertion', 'TSInstantiationExpression']);

/** The outermost expression whose value is `node`'s value. */
function unwrap(node) {
  let top = node;
  while (TRANSPARENT.has(top.parent?.type) && (top.parent.expression === top)) top = top.parent;
  return top;
}

/** The static name of a property key or member access, or null if computed at run time. */
function staticKey(key, computed) {
  if (!computed) return key.type === 'Identifier' ? key.name : key.type === 'PrivateIdentifier' ? `#${key.name}` : null;
  if (key.type === 'Literal' && (typeof key.value === 'string' || typeof key.value === 'number')) return String(key.value);
  if (key.type === 'TemplateLiteral' && key.expressions.length === 0) return key.quasis[0].value.cooked;
  return null;
}

const noImpureGlobals = {
  meta: {
    type: 'problem',
    docs: { description: 'Forbid timers, clocks, randomness, I/O and process globals in pure code, however they are reached' },
    schema: [],
    messages: {
      banned: '{{name}}: {{why}}',
      member: '{{name}}.{{member}}: {{why}}',
      construct: '{{how}} {{name}}: {{why}}',
      escapes: '{{name}} may only be used through its pure static members here (it would escape the check): {{why}}',
      computed: '{{name}}[…]: a computed member of {{name}} escapes the check; {{why}}',
      globalObject: '{{name}} may only be used as {{name}}.<pure global>: the global object escapes the check',
      ambient: 'an ambient declaration of {{name}} hides the global from the check; it is still the global at run time',
      declareGlobal: 'declare global: pure code does not augment the global scope (it would hide globals from the check)',
      constructor: '.constructor(…) reaches constructors the check cannot see (Function, hence code from strings); name the class',
    },
  },
  create(context) {
    const { sourceCode } = context;

    /** Check a use of the global `name`, whose value is the expression `node`. */
    function checkGlobal(name, node) {
      if (BANNED_GLOBALS.has(name)) {
        context.report({ node, messageId: 'banned', data: { name, why: BANNED_GLOBALS.get(name) } });
        return;
      }
      if (GLOBAL_OBJECTS.has(name)) {
        checkGlobalObject(name, node);
        return;
      }
      const ns = NAMESPACES.get(name);
      if (ns) checkNamespace(name, ns, node);
    }

    /** `globalThis` is only ever fine as `globalThis.<name>`, which is a use of the global `<name>`. */
    function checkGlobalObject(name, node) {
      const top = unwrap(node);
      const parent = top.parent;
      if (parent.type === 'MemberExpression' && parent.object === top) {
        const key = staticKey(parent.property, parent.computed);
        if (key === null) context.report({ node: parent, messageId: 'globalObject', data: { name } });
        else checkGlobal(key, parent);
        return;
      }
      if (parent.type === 'UnaryExpression' && parent.operator === 'typeof') return;
      context.report({ node, messageId: 'globalObject', data: { name } });
    }

    /** Date, Math, …: only static members that are not banned, `instanceof` and `typeof`. */
    function checkNamespace(name, ns, node) {
      const top = unwrap(node);
      const parent = top.parent;
      if (parent.type === 'MemberExpression' && parent.object === top) {
        const member = staticKey(parent.property, parent.computed);
        if (member === null) context.report({ node: parent, messageId: 'computed', data: { name, why: ns.message } });
        else if (ns.banned.has(member)) context.report({ node: parent, messageId: 'member', data: { name, member, why: ns.banned.get(member) } });
        return;
      }
      if ((parent.type === 'NewExpression' || parent.type === 'CallExpression') && parent.callee === top) {
        if (!ns.construct) context.report({ node: parent, messageId: 'construct', data: { how: parent.type === 'NewExpression' ? 'new' : 'calling', name, why: ns.message } });
        return;
      }
      if (parent.type === 'BinaryExpression' && parent.operator === 'instanceof' && parent.right === top) return;
      if (parent.type === 'UnaryExpression' && parent.operator === 'typeof') return;
      const pattern = parent.type === 'VariableDeclarator' && parent.init === top ? parent.id
        : parent.type === 'AssignmentExpression' && parent.right === top && parent.operator === '=' ? parent.left
          : null;
      if (pattern?.type === 'ObjectPattern') {
        for (const prop of pattern.properties) {
          const member = prop.type === 'Property' ? staticKey(prop.key, prop.computed) : null;
          if (member === null) context.report({ node: prop, messageId: 'computed', data: { name, why: ns.message } });
          else if (ns.banned.has(member)) context.report({ node: prop, messageId: 'member', data: { name, member, why: ns.banned.get(member) } });
        }
        return;
      }
      context.report({ node, messageId: 'escapes', data: { name, why: ns.message } });
    }

    /** A reference to a global (not a local of that name), as a value (not a type). */
    function* globalReferences(globalScope) {
      for (const variable of globalScope.variables) {
        // Declared by the environment (configured globals, TypeScript's lib), not by the file.
        if (variable.defs.length === 0 && interesting(variable.name)) yield* variable.references;
      }
      for (const reference of globalScope.through) {
        if (interesting(reference.identifier.name)) yield reference;
      }
    }

    /** `declare const Date: …` makes Date a local for scope analysis, yet it is the global at run time. */
    function checkAmbient(node, id) {
      if (id?.type === 'Identifier' && interesting(id.name)) context.report({ node: id, messageId: 'ambient', data: { name: id.name } });
    }

    /** `f.constructor('return Date.now()')`, `new ({}).constructor.constructor(…)`: Function without naming it. */
    function checkConstructorCall(node) {
      let callee = node.callee;
      while (TRANSPARENT.has(callee.type)) callee = callee.expression;
      if (callee.type === 'MemberExpression' && staticKey(callee.property, callee.computed) === 'constructor') context.report({ node: callee, messageId: 'constructor' });
    }

    return {
      VariableDeclaration(node) {
        if (node.declare) for (const declarator of node.declarations) checkAmbient(declarator, declarator.id);
      },
      TSDeclareFunction(node) {
        if (node.declare) checkAmbient(node, node.id);
      },
      'ClassDeclaration, TSEnumDeclaration, TSModuleDeclaration'(node) {
        if (node.declare && node.kind !== 'global') checkAmbient(node, node.id);
      },
      // Pure code has no business augmenting the global scope.
      'TSModuleDeclaration[kind="global"]'(node) {
        context.report({ node, messageId: 'declareGlobal' });
      },
      CallExpression: checkConstructorCall,
      NewExpression: checkConstructorCall,
      Program(node) {
        const globalScope = sourceCode.getScope(node);
        for (const reference of globalReferences(globalScope)) {
          const id = reference.identifier;
          if (TYPE_PARENTS.has(id.parent?.type)) continue;
          checkGlobal(id.name, id);
        }
      },
    };
  },
};

/** Globs (`*`, `**`, `{a,b}`) to an anchored regular expression on a root-relative, `/`-separated path. */
function globToRegExp(glob) {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      i++;
      if (glob[i + 1] === '/') { i++; re += '(?:.*/)?'; } else re += '.*';
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '{') re += '(?:';
    else if (c === '}') re += ')';
    else if (c === ',') re += '|';
    else re += c.replace(/[.+^$()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** The package or node module a bare specifier names: `node:fs/promises` → fs, `@nats-io/kv/x` → @nats-io/kv. */
function moduleBase(specifier) {
  const bare = specifier.startsWith('node:') ? specifier.slice(5) : specifier;
  const parts = bare.split('/');
  return bare.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

const IMPURE_MODULE_BASES = new Set(IMPURE_MODULES.map(moduleBase));
const IMPURE_PACKAGE_RES = IMPURE_PACKAGES.map(globToRegExp);

/** Why `specifier` (a bare module name) may not be imported by pure code, or null. */
function impureModule(specifier) {
  const base = moduleBase(specifier);
  if (IMPURE_MODULE_BASES.has(base) && !specifier.startsWith('@')) return 'pure code: no I/O, timers, wall clock or process state';
  if (IMPURE_PACKAGE_RES.some((re) => re.test(base))) return 'pure code: no transport, telemetry or process libraries';
  return null;
}

const isCrypto = (specifier) => moduleBase(specifier) === 'crypto' && !specifier.startsWith('@');

const noImpureImports = {
  meta: {
    type: 'problem',
    docs: { description: 'Forbid imports of I/O, timer and process modules, of randomness from node:crypto, and of shell files in pure code' },
    schema: [{
      type: 'object',
      properties: { shellFiles: { type: 'array', items: { type: 'string' } } },
      additionalProperties: false,
    }],
    messages: {
      impure: "'{{specifier}}': {{why}}",
      crypto: "'{{specifier}}': pure code may only import {createHash, createCipheriv} from it (hashing, checksums); randomness comes from the seeded Rng",
      dynamic: 'a dynamic import of a computed specifier escapes the check; import statically',
      shell: "'{{specifier}}' is shell code ({{file}}): pure code gets time, randomness and I/O injected, it does not import them",
    },
  },
  create(context) {
    const shellRes = (context.options[0]?.shellFiles ?? []).map(globToRegExp);
    const dir = path.dirname(context.filename);

    /** The root-relative path a relative specifier resolves to, as each extension the source could have. */
    function shellFile(specifier) {
      const rel = path.relative(ROOT, path.resolve(dir, specifier)).split(path.sep).join('/');
      const candidates = [rel, rel.replace(/\.([cm]?)js$/, '.$1ts'), rel.replace(/\.jsx$/, '.tsx'), `${rel}.ts`, `${rel}/index.ts`];
      return candidates.find((file) => shellRes.some((re) => re.test(file))) ?? null;
    }

    /** Check a module specifier; `names` are the imported names, or null when the whole module is (namespace, default, dynamic). */
    function check(sourceNode, names) {
      const specifier = sourceNode.type === 'Literal' && typeof sourceNode.value === 'string' ? sourceNode.value
        : sourceNode.type === 'TemplateLiteral' && sourceNode.expressions.length === 0 ? sourceNode.quasis[0].value.cooked
          : null;
      if (specifier === null) {
        context.report({ node: sourceNode, messageId: 'dynamic' });
        return;
      }
      if (specifier.startsWith('.') || specifier.startsWith('/')) {
        const file = shellFile(specifier);
        if (file) context.report({ node: sourceNode, messageId: 'shell', data: { specifier, file } });
        return;
      }
      if (isCrypto(specifier)) {
        if (names === null || names.length === 0 || names.some((n) => !CRYPTO_ALLOWED.has(n))) context.report({ node: sourceNode, messageId: 'crypto', data: { specifier } });
        return;
      }
      const why = impureModule(specifier);
      if (why) context.report({ node: sourceNode, messageId: 'impure', data: { specifier, why } });
    }

    const nameOf = (n) => (n.type === 'Identifier' ? n.name : String(n.value));

    return {
      ImportDeclaration(node) {
        // A type-only import is erased at compile time: nothing of the module runs.
        if (node.importKind === 'type') return;
        const named = node.specifiers.every((s) => s.type === 'ImportSpecifier');
        check(node.source, named ? node.specifiers.map((s) => nameOf(s.imported)) : null);
      },
      ExportNamedDeclaration(node) {
        if (node.source) check(node.source, node.specifiers.map((s) => nameOf(s.local)));
      },
      ExportAllDeclaration(node) {
        check(node.source, null);
      },
      ImportExpression(node) {
        check(node.source, null);
      },
      TSImportEqualsDeclaration(node) {
        if (node.moduleReference.type === 'TSExternalModuleReference') check(node.moduleReference.expression, null);
      },
    };
  },
};

const noInlineConfig = {
  meta: {
    type: 'problem',
    docs: { description: 'Forbid eslint directive comments in pure code (they are ignored there: noInlineConfig)' },
    schema: [],
    messages: {
      directive: 'eslint directive comments have no effect in pure code and are not allowed: the purity rules cannot be switched off',
    },
  },
  create(context) {
    const { sourceCode } = context;
    return {
      Program() {
        const directives = sourceCode.getInlineConfigNodes?.()
          ?? sourceCode.getAllComments().filter((c) => /^\s*(?:eslint(?:-[a-z-]+)?|globals?|exported)(?:\s|$)/.test(c.value));
        for (const comment of directives) context.report({ loc: comment.loc, messageId: 'directive' });
      },
    };
  },
};

export const rules = {
  'no-impure-globals': noImpureGlobals,
  'no-impure-imports': noImpureImports,
  'no-inline-config': noInlineConfig,
};

export default {
  meta: { name: 'purity', version: '1.0.0' },
  rules,
};
