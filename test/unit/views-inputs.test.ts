import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const VIEWS = fileURLToPath(new URL('../../views/', import.meta.url));

function templates(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? templates(path.join(dir, e.name)) : e.name.endsWith('.eta') ? [path.join(dir, e.name)] : []);
}

// The stylesheet styles form fields by type (public/app.css): an <input> without one renders as the browser's bare
// default, smaller than the fields beside it (the usage page's Tag filter did).
describe('portal templates', () => {
  it('give every <input> a type, so the stylesheet styles it', () => {
    const untyped = templates(VIEWS).flatMap((file) =>
      [...fs.readFileSync(file, 'utf8').replace(/<%[\s\S]*?%>/g, '_').matchAll(/<input\b[^>]*>/g)].filter((m) => !/\stype=/.test(m[0])).map((m) => `${path.relative(VIEWS, file)}: ${m[0]}`));
    expect(untyped).toEqual([]);
  });
});
