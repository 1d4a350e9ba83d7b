import { z } from 'zod';

/**
 * Reads a zod (v4) configuration schema back as documentation rows: the
 * schema is the one source of the defaults, the bounds and the text
 * (`.describe()`), so the reference generated from it cannot drift.
 */

type Schema = z.core.$ZodType;
export type Primitive = string | number | boolean;

export interface Bound {
  readonly value: number;
  /** `min(x)` / `max(x)` are inclusive; `positive()`, `gt(x)`, `lt(x)` are not. */
  readonly inclusive: boolean;
}

export interface Constraints {
  readonly min?: Bound;
  readonly max?: Bound;
  /** The allowed values of an enum (or of a discriminator). */
  readonly values?: readonly Primitive[];
  /** Regular expressions a string must match. */
  readonly patterns?: readonly string[];
}

export interface ConfigRow {
  /** Dotted path from the root of the configuration, e.g. `link.rttMs`. */
  readonly path: string;
  /** `integer`, `number`, `boolean`, `string`, `enum`, `literal`, `object`, `union`, or another zod type name. */
  readonly type: string;
  readonly hasDefault: boolean;
  /** Absent is allowed and stays absent (the reader then derives the value: its description says from what). */
  readonly optional?: boolean;
  /** What the schema puts there when the field is absent (undefined when it is required). */
  readonly default: unknown;
  readonly constraints: Constraints;
  /** The field's `.describe()` text; empty when it has none. */
  readonly description: string;
  /** Set on the fields of one variant of a discriminated union: they exist only when `key` is `value`. */
  readonly variant?: { readonly key: string; readonly value: Primitive };
}

const descriptionOf = (schema: Schema): string | undefined => z.globalRegistry.get(schema)?.description;

const def = (schema: Schema) => (schema as z.core.$ZodTypes)._zod.def;

/**
 * Strips the wrappers that do not change what a field is (default, optional,
 * readonly, ...). The description may sit on any of them; the outermost wins.
 */
export function unwrap(schema: Schema): { inner: Schema; description: string | undefined } {
  let s = schema;
  let description: string | undefined;
  for (;;) {
    description ??= descriptionOf(s);
    const d = def(s);
    switch (d.type) {
      case 'default':
      case 'prefault':
      case 'optional':
      case 'nullable':
      case 'nonoptional':
      case 'readonly':
      case 'catch':
        s = d.innerType;
        break;
      default:
        return { inner: s, description };
    }
  }
}

function numberFacts(checks: readonly z.core.$ZodCheck[] | undefined): { integer: boolean; min?: Bound; max?: Bound } {
  let integer = false;
  let min: Bound | undefined;
  let max: Bound | undefined;
  for (const check of (checks ?? []) as z.core.$ZodChecks[]) {
    const c = check._zod.def;
    if (c.check === 'number_format') {
      // `.int()` is a safe-integer format; its ±2^53 bounds are not the option's.
      if (c.format.includes('int')) integer = true;
    } else if (c.check === 'greater_than' && typeof c.value === 'number') {
      if (min === undefined || c.value > min.value || (c.value === min.value && !c.inclusive)) min = { value: c.value, inclusive: c.inclusive };
    } else if (c.check === 'less_than' && typeof c.value === 'number') {
      if (max === undefined || c.value < max.value || (c.value === max.value && !c.inclusive)) max = { value: c.value, inclusive: c.inclusive };
    }
  }
  return { integer, ...(min ? { min } : {}), ...(max ? { max } : {}) };
}

function stringPatterns(checks: readonly z.core.$ZodCheck[] | undefined): string[] {
  const patterns: string[] = [];
  for (const check of (checks ?? []) as z.core.$ZodChecks[]) {
    const c = check._zod.def;
    if (c.check === 'string_format' && c.format === 'regex' && c.pattern) patterns.push(c.pattern.source);
  }
  return patterns;
}

/** Type and constraints of an unwrapped field. */
function facts(inner: Schema): { type: string; constraints: Constraints } {
  const d = def(inner);
  switch (d.type) {
    case 'number': {
      const { integer, ...bounds } = numberFacts(d.checks);
      return { type: integer ? 'integer' : 'number', constraints: bounds };
    }
    case 'string': {
      const patterns = stringPatterns(d.checks);
      return { type: 'string', constraints: patterns.length > 0 ? { patterns } : {} };
    }
    case 'enum':
      return { type: 'enum', constraints: { values: Object.values(d.entries) } };
    case 'literal':
      return { type: 'literal', constraints: { values: d.values.filter((v): v is Primitive => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') } };
    default:
      return { type: d.type, constraints: {} };
  }
}

/** The value parsing an absent field gives: the same as reading it from `schema.parse({})`, but per field, so it also works beside required fields. */
function defaultOf(field: Schema): { hasDefault: boolean; default: unknown; optional?: boolean } {
  const result = z.safeParse(field, undefined);
  if (!result.success) return { hasDefault: false, default: undefined };
  return result.data !== undefined ? { hasDefault: true, default: result.data } : { hasDefault: false, default: undefined, optional: true };
}

const join = (prefix: string, key: string): string => (prefix === '' ? key : `${prefix}.${key}`);

function fieldRow(path: string, field: Schema): ConfigRow {
  const { inner, description } = unwrap(field);
  return { path, ...facts(inner), ...defaultOf(field), description: description ?? '' };
}

/**
 * One row per field of an object schema, or of each variant of a
 * discriminated union of objects (the discriminator gets one row listing the
 * variants). Nested objects are one row each, not expanded: document them with
 * their own call.
 */
export function describeSchema(schema: Schema, prefix = ''): ConfigRow[] {
  const { inner } = unwrap(schema);
  const d = def(inner);
  if (d.type === 'object') {
    return Object.entries(d.shape).map(([key, field]) => fieldRow(join(prefix, key), field));
  }
  if (d.type === 'union' && 'discriminator' in d && typeof d.discriminator === 'string') {
    return describeVariants(d.options, d.discriminator, prefix);
  }
  throw new Error(`describeSchema: expected an object or a discriminated union, got ${d.type}`);
}

function describeVariants(options: readonly Schema[], key: string, prefix: string): ConfigRow[] {
  const variants = options.map((option) => {
    const d = def(unwrap(option).inner);
    if (d.type !== 'object') throw new Error(`describeSchema: variant of a discriminated union is ${d.type}, not an object`);
    const tag = d.shape[key];
    if (tag === undefined) throw new Error(`describeSchema: a variant has no discriminator ${key}`);
    const { inner, description } = unwrap(tag);
    const values = facts(inner).constraints.values ?? [];
    if (values.length !== 1) throw new Error(`describeSchema: discriminator ${key} of a variant must be one literal`);
    return { value: values[0]!, description, shape: d.shape };
  });
  // The discriminator's text is its variants' texts; one missing leaves it empty, so a test catches it.
  const complete = variants.every((v) => v.description !== undefined && v.description !== '');
  const rows: ConfigRow[] = [
    {
      path: join(prefix, key),
      type: 'enum',
      hasDefault: false,
      default: undefined,
      constraints: { values: variants.map((v) => v.value) },
      description: complete ? variants.map((v) => `\`${String(v.value)}\`: ${v.description}`).join(' ') : '',
    },
  ];
  for (const v of variants) {
    for (const [field, schema] of Object.entries(v.shape)) {
      if (field !== key) rows.push({ ...fieldRow(join(prefix, field), schema), variant: { key, value: v.value } });
    }
  }
  return rows;
}

// ---------------------------------------------------------------- markdown

const SI = [
  [1e12, 'T'],
  [1e9, 'G'],
  [1e6, 'M'],
  [1e3, 'k'],
] as const;
const BINARY = [
  [2 ** 30, 'GiB'],
  [2 ** 20, 'MiB'],
  [2 ** 10, 'KiB'],
] as const;

function decimal(n: number, unit: string): string | undefined {
  for (const [scale, prefix] of SI) if (n >= scale) return `${Number((n / scale).toPrecision(6))} ${prefix}${unit}`;
  return undefined;
}

/**
 * A number in the unit its field's name carries (STYLE §3), for readers:
 * `4194304` bytes → `4 MiB`, `200000` µs → `200 ms`. Undefined when the raw
 * number says it as well.
 */
export function unitHint(path: string, n: number): string | undefined {
  const name = path.slice(path.lastIndexOf('.') + 1);
  if (name.endsWith('BitsPerSec')) return decimal(n, 'bit/s');
  if (name.endsWith('BytesPerSec')) return decimal(n, 'B/s');
  if (name.endsWith('Bytes') || name.endsWith('BytesMax')) {
    for (const [scale, unit] of BINARY) if (n >= scale && n % scale === 0) return `${n / scale} ${unit}`;
    return undefined;
  }
  if (name.endsWith('Us')) {
    if (n >= 1e6) return `${n / 1e6} s`;
    if (n >= 1e3) return `${n / 1e3} ms`;
  }
  return undefined;
}

const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
const code = (text: string): string => `\`${text}\``;

function formatValue(path: string, value: unknown): string {
  if (typeof value === 'number') {
    const hint = unitHint(path, value);
    return hint === undefined ? code(String(value)) : `${code(String(value))} (${hint})`;
  }
  if (typeof value === 'string' || typeof value === 'boolean') return code(String(value));
  return code(JSON.stringify(value));
}

function formatBound(path: string, bound: Bound, below: boolean): string {
  const op = below ? (bound.inclusive ? '≥' : '>') : bound.inclusive ? '≤' : '<';
  return `${op} ${formatValue(path, bound.value)}`;
}

export function formatConstraints(row: ConfigRow): string {
  const c = row.constraints;
  const parts: string[] = [];
  if (c.min) parts.push(formatBound(row.path, c.min, true));
  if (c.max) parts.push(formatBound(row.path, c.max, false));
  if (c.values) parts.push(c.values.map((v) => code(String(v))).join(', '));
  for (const pattern of c.patterns ?? []) parts.push(`matches ${code(pattern)}`);
  return parts.join(', ');
}

export interface TableOptions {
  /** For a nested object or union row: the anchor of its own table, linked from this one. */
  readonly anchorFor?: (row: ConfigRow) => string | undefined;
}

/** A GitHub markdown table of rows: field, type, default, constraints, description. */
export function markdownTable(rows: readonly ConfigRow[], options: TableOptions = {}): string {
  const lines = ['| Field | Type | Default | Constraints | Description |', '|---|---|---|---|---|'];
  for (const row of rows) {
    const anchor = options.anchorFor?.(row);
    const field = anchor === undefined ? code(row.path) : `[${code(row.path)}](#${anchor})`;
    const onlyWhen = row.variant ? ` (${row.variant.key} ${code(String(row.variant.value))})` : '';
    // A nested object's defaults are its fields' defaults, listed in its own table.
    const defaultText = !row.hasDefault ? (row.optional === true ? 'optional' : 'required') : row.type === 'object' && anchor !== undefined ? 'its fields’ defaults' : formatValue(row.path, row.default);
    lines.push(`| ${[field + onlyWhen, row.type, defaultText, formatConstraints(row), row.description].map(cell).join(' | ')} |`);
  }
  return lines.join('\n');
}
