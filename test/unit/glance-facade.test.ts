import type { ArtifactView } from '../../src/backends/port';
import { glanceRange } from '../../src/http/glance/data';
import { errorFormat, renderError } from '../../src/http/glance/errors';
import { fromGlanceImage, glanceTime, toGlanceImage } from '../../src/domain/glance-image';
import { splitQuoted } from '../../src/http/glance/listing';

/** The facade's pure pieces: the image mapping both ways, webob's Accept choice, quoting, ranges. */
const view: ArtifactView = {
  id: '0d6f3a1e-7c55-4c3b-9a7a-3e1c2b5d4f60',
  typeName: 'images',
  name: 'cirros',
  version: '0.0.0',
  status: 'active',
  visibility: 'shared',
  owner: 'project-a',
  tags: ['a', 'b'],
  properties: { os_distro: 'cirros', os_glance_stage_host: 'node-1', os_glance_failed_import: '' },
  fields: {
    disk_format: 'raw', container_format: 'bare', size: 10, virtual_size: 10, checksum: 'c'.repeat(32), os_hash_algo: 'sha512',
    os_hash_value: 'f'.repeat(128), min_disk: 1, min_ram: 64, protected: false, os_hidden: false, stores: ['fs'],
  },
  createdAt: '2026-01-02T03:04:05.678Z',
  updatedAt: '2026-01-02T03:04:06.001Z',
  activatedAt: null,
  revision: 3,
  backend: 'native',
};

describe('image JSON', () => {
  it('shows base properties, visible extra properties, whole-second times and relative links', () => {
    const json = toGlanceImage(view);
    expect(json).toMatchObject({ created_at: '2026-01-02T03:04:05Z', updated_at: '2026-01-02T03:04:06Z', self: `/v2/images/${view.id}`, file: `/v2/images/${view.id}/file`, schema: '/v2/schemas/image', os_glance_failed_import: '' });
    expect(json).not.toHaveProperty('os_glance_stage_host');
    expect(json).not.toHaveProperty('stores');
    expect(toGlanceImage(view, { multistore: true }).stores).toBe('fs');
    expect(toGlanceImage({ ...view, name: '' }).name).toBeNull();
  });

  it('reads Glance JSON back into the same record (up to what Glance does not carry)', () => {
    const back = fromGlanceImage(toGlanceImage(view, { multistore: true }), { backend: 'native', revision: 3 });
    const { os_glance_stage_host: _hidden, ...visible } = view.properties;
    expect(back).toEqual({ ...view, properties: visible, createdAt: '2026-01-02T03:04:05.000Z', updatedAt: '2026-01-02T03:04:06.000Z' });
  });
});

describe('webob error format from Accept', () => {
  it.each([
    [undefined, 'html'], ['*/*', 'html'], ['text/html', 'html'], ['application/json', 'json'], ['application/json, */*;q=0.1', 'json'],
    ['text/html;q=0.5, application/json', 'json'], ['text/*', 'html'], ['text/plain', 'text'], ['', 'text'], ['image/png', 'text'], ['*/*;q=0', 'text'],
  ])('Accept %p → %s', (accept, format) => {
    expect(errorFormat(accept)).toBe(format);
  });
});

describe('Glance times', () => {
  it.each([
    ['2026-01-02T03:04:05.678Z', '2026-01-02T03:04:05Z'],
    ['2026-01-02T03:04:05Z', '2026-01-02T03:04:05Z'],
    ['2026-01-02T03:04:05.123456Z', '2026-01-02T03:04:05Z'],
    // Not UTC as written: parsed, then shown in UTC.
    ['2026-01-02T05:04:05.678+02:00', '2026-01-02T03:04:05Z'],
  ])('%s → %s', (iso, shown) => {
    expect(glanceTime(iso)).toBe(shown);
  });
});

describe('webob error bodies', () => {
  // What webob 1.8 (Debian bookworm, the one Glance 25.1 runs on) renders for the same errors
  // (JSON with JSON.stringify's spacing; webob's json.dumps puts a space after ':' and ',').
  it.each([
    ['html', 403, 'explanation', 'X y.', '<html>\n <head>\n  <title>403 Forbidden</title>\n </head>\n <body>\n  <h1>403 Forbidden</h1>\n  X y.<br /><br />\n\n\n\n </body>\n</html>'],
    ['json', 403, 'explanation', 'X y.', '{"message":"X y.<br /><br />\\n\\n\\n","code":"403 Forbidden","title":"Forbidden"}'],
    ['text', 403, 'explanation', 'X y.', '403 Forbidden\n\nX y.\n\n   '],
    ['html', 403, 'detail', 'Attribute x is reserved.', '<html>\n <head>\n  <title>403 Forbidden</title>\n </head>\n <body>\n  <h1>403 Forbidden</h1>\n  Access was denied to this resource.<br /><br />\nAttribute x is reserved.\n\n\n </body>\n</html>'],
    ['json', 409, 'detail', 'Property nope does not exist.', '{"message":"There was a conflict when trying to complete your request.<br /><br />\\nProperty nope does not exist.\\n\\n","code":"409 Conflict","title":"Conflict"}'],
    ['text', 409, 'detail', 'Property nope does not exist.', '409 Conflict\n\nThere was a conflict when trying to complete your request.\n\n Property nope does not exist.  '],
  ] as const)('%s, %d, message as %s', (format, status, placement, message, expected) => {
    expect(renderError(format, status, message, placement).body).toBe(expected);
  });
});

describe('in: values', () => {
  it('splits on commas outside double quotes', () => {
    expect(splitQuoted('a,"b,c",d')).toEqual(['a', 'b,c', 'd']);
    expect(splitQuoted('"say \\"hi\\""')).toEqual(['say "hi"']);
    expect(() => splitQuoted('"open')).toThrow('The quote is not closed');
  });
});

describe('Range', () => {
  it('follows Glance: one range, suffixes allowed, lists 400, the rest 416', () => {
    expect(glanceRange(undefined, 10)).toBe('full');
    expect(glanceRange('bytes=0-3', 10)).toEqual({ start: 0, end: 3 });
    expect(glanceRange('bytes=5-100', 10)).toEqual({ start: 5, end: 9 });
    expect(glanceRange('bytes=-4', 10)).toEqual({ start: 6, end: 9 });
    expect(() => glanceRange('bytes=0-1,2-3', 10)).toThrow(expect.objectContaining({ status: 400 }));
    for (const bad of ['bytes=10-', 'bytes=4-2', 'bytes=-0', 'items=0-1', 'bytes=-']) {
      expect(() => glanceRange(bad, 10)).toThrow(expect.objectContaining({ status: 416 }));
    }
  });
});
