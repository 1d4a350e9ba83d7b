import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CONFIG_SECTIONS, configDocRows, renderConfigDocs } from '../../../cli/commands/config-docs.js';
import { describeSchema, markdownTable } from '../../../lib/config/describe.js';
import { runConfigSchema } from '../../../lib/config/run-config.js';

const DOCS = new URL('../../../docs/configuration.md', import.meta.url);

describe('configuration reference', () => {
  it('docs/configuration.md is what `specula config-docs` prints (regenerate it after changing a schema)', () => {
    expect(renderConfigDocs()).toBe(readFileSync(DOCS, 'utf8'));
  });

  it('every field of every schema has a description', () => {
    const undescribed = configDocRows()
      .flatMap((section) => section.rows)
      .filter((row) => row.description.trim() === '')
      .map((row) => row.path);
    expect(undescribed).toEqual([]);
  });

  it('every nested object of RunConfig has its own section', () => {
    const nested = describeSchema(runConfigSchema)
      .filter((row) => row.type === 'object' || row.type === 'union')
      .map((row) => row.path);
    expect([...nested].sort()).toEqual([...CONFIG_SECTIONS].sort());
  });

  it('lists the defaults the schema gives when parsing an empty config', () => {
    const defaults = runConfigSchema.parse({});
    let checked = 0;
    for (const section of configDocRows()) {
      for (const row of section.rows) {
        if (row.variant !== undefined || !row.hasDefault) continue;
        const value = row.path.split('.').reduce<unknown>((obj, key) => (obj as Record<string, unknown>)[key], defaults);
        expect(row.default, row.path).toEqual(value);
        checked++;
      }
    }
    // Most options have a default: a table that lost them all would otherwise pass.
    expect(checked).toBeGreaterThan(50);
  });
});

describe('describeSchema', () => {
  const schema = z.object({
    rateBitsPerSec: z.number().positive().max(10e9).default(1e9).describe('rate'),
    countPackets: z.number().int().min(0).lt(100).describe('count'),
    kind: z.enum(['a', 'b']).default('a').describe('kind'),
  });

  it('reads type, default, bounds with their inclusiveness, and description', () => {
    expect(describeSchema(schema, 'x')).toEqual([
      { path: 'x.rateBitsPerSec', type: 'number', hasDefault: true, default: 1e9, constraints: { min: { value: 0, inclusive: false }, max: { value: 10e9, inclusive: true } }, description: 'rate' },
      { path: 'x.countPackets', type: 'integer', hasDefault: false, default: undefined, constraints: { min: { value: 0, inclusive: true }, max: { value: 100, inclusive: false } }, description: 'count' },
      { path: 'x.kind', type: 'enum', hasDefault: true, default: 'a', constraints: { values: ['a', 'b'] }, description: 'kind' },
    ]);
  });

  it('gives a discriminated union one row for the discriminator and rows per variant', () => {
    const union = z.discriminatedUnion('kind', [
      z.object({ kind: z.literal('p').describe('P'), size: z.number().default(1).describe('size') }),
      z.object({ kind: z.literal('q').describe('Q') }),
    ]);
    const rows = describeSchema(union);
    expect(rows.map((r) => [r.path, r.variant?.value ?? null, r.description])).toEqual([
      ['kind', null, '`p`: P `q`: Q'],
      ['size', 'p', 'size'],
    ]);
  });

  it('leaves the discriminator undescribed when a variant is', () => {
    const union = z.discriminatedUnion('kind', [z.object({ kind: z.literal('p').describe('P') }), z.object({ kind: z.literal('q') })]);
    expect(describeSchema(union)[0]!.description).toBe('');
  });

  it('renders units the field name carries next to raw numbers', () => {
    const table = markdownTable(describeSchema(z.object({ bufBytes: z.number().default(4 * 1024 * 1024).describe('b'), waitUs: z.number().default(40_000).describe('w') })));
    expect(table).toContain('`4194304` (4 MiB)');
    expect(table).toContain('`40000` (40 ms)');
  });
});
