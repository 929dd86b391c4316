import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, type TestApp } from '../helpers/app';
import { GLANCE, OPENSTACK, parseRows, parseTable, requireClients, runClient, runClientOk } from '../helpers/openstack-clients';

/** The real OpenStack clients against a Vitrine started here (test/helpers/openstack-clients.ts). */

jest.setTimeout(300_000);

let app: TestApp;
let home: string;
let imageFile: string;
let imageData: Buffer;

beforeAll(async () => {
  requireClients();
  app = await startTestApp();
  // A fresh HOME per run: glanceclient caches the image schema under ~/.glanceclient.
  home = mkdtempSync(join(tmpdir(), 'vitrine-clients-'));
  imageData = randomBytes(300_000);
  imageFile = join(home, 'image.raw');
  writeFileSync(imageFile, imageData);
});

afterAll(async () => {
  await app?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

const run = (command: string, args: string[]) => runClient(home, command, args);
const ok = (command: string, args: string[]) => runClientOk(home, command, args);

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

describe('python-glanceclient (glance)', () => {
  const glance = (args: string[], who: keyof TestApp['tokens'] = 'memberA') => ['--os-image-url', app.baseUrl, '--os-auth-token', app.tokens[who], ...args];
  const v2 = (args: string[], who: keyof TestApp['tokens'] = 'memberA') => glance(['--os-image-api-version', '2', ...args], who);

  it('creates, uploads, shows, lists, downloads, updates, tags, shares, deactivates and deletes an image', async () => {
    // Without an API version the client discovers it from /versions and caches the schema.
    const created = parseTable(await ok(GLANCE, glance(['image-create', '--name', 'cli-g1', '--disk-format', 'raw', '--container-format', 'bare', '--property', 'os_distro=cirros', '--tags', 't1', '--min-disk', '1'])));
    expect(created).toMatchObject({ name: 'cli-g1', status: 'queued', visibility: 'shared', owner: 'project-a', os_distro: 'cirros', min_disk: '1', disk_format: 'raw' });
    // glanceclient 4.1 then chokes on its own cache ("--stores: conflicting option string"),
    // against real Glance too (NOTES §9.7); the known workaround is to drop the cached schema.
    const cachedSchema = join(home, '.glanceclient', 'image_schema.json');
    expect(JSON.parse(readFileSync(cachedSchema, 'utf8')).name).toBe('image');
    rmSync(cachedSchema);
    const id = created.id;

    await ok(GLANCE, v2(['image-upload', '--file', imageFile, id]));
    const shown = parseTable(await ok(GLANCE, v2(['image-show', id])));
    expect(shown).toMatchObject({ status: 'active', size: String(imageData.length), checksum: md5(imageData), os_hash_algo: 'sha512' });
    expect(shown.os_hash_value).toBe(createHash('sha512').update(imageData).digest('hex'));

    // The client re-hashes the download against os_hash_value and fails on a mismatch.
    const downloaded = join(home, 'downloaded.raw');
    await ok(GLANCE, v2(['image-download', '--file', downloaded, id]));
    expect(readFileSync(downloaded).equals(imageData)).toBe(true);

    const second = parseTable(await ok(GLANCE, v2(['image-create', '--name', 'cli-g0', '--property', 'os_distro=cirros'])));
    // Page size 1 makes the client follow `next` links.
    const rows = parseRows(await ok(GLANCE, v2(['image-list', '--property-filter', 'os_distro=cirros', '--sort-key', 'name', '--sort-dir', 'asc', '--page-size', '1'])));
    expect(rows).toEqual([[second.id, 'cli-g0'], [id, 'cli-g1']]);
    expect(parseRows(await ok(GLANCE, v2(['image-list', '--tag', 't1'])))).toEqual([[id, 'cli-g1']]);

    const updated = parseTable(await ok(GLANCE, v2(['image-update', '--name', 'cli-g2', '--property', 'os_version=0.6', '--remove-property', 'os_distro', id])));
    expect(updated).toMatchObject({ name: 'cli-g2', os_version: '0.6' });
    expect(updated).not.toHaveProperty('os_distro');

    await ok(GLANCE, v2(['image-tag-update', id, 'blue']));
    await ok(GLANCE, v2(['image-tag-delete', id, 't1']));
    expect(JSON.parse(parseTable(await ok(GLANCE, v2(['image-show', id]))).tags)).toEqual(['blue']);

    expect(parseRows(await ok(GLANCE, v2(['member-create', id, 'project-b'])))).toEqual([[id, 'project-b', 'pending']]);
    expect(parseRows(await ok(GLANCE, v2(['member-update', id, 'project-b', 'accepted'], 'memberB')))).toEqual([[id, 'project-b', 'accepted']]);
    expect(parseRows(await ok(GLANCE, v2(['member-list', '--image-id', id])))).toEqual([[id, 'project-b', 'accepted']]);

    await ok(GLANCE, v2(['image-deactivate', id]));
    expect(parseTable(await ok(GLANCE, v2(['image-show', id]))).status).toBe('deactivated');
    const refused = await run(GLANCE, v2(['image-download', '--file', downloaded, id], 'memberB'));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('403 Forbidden');
    await ok(GLANCE, v2(['image-reactivate', id]));

    await ok(GLANCE, v2(['image-delete', id, second.id]));
    const gone = await run(GLANCE, v2(['image-show', id]));
    expect(gone.code).toBe(1);
    // glanceclient strips the HTML error page down to "<status>: <message>".
    expect(gone.stderr).toContain(`404 Not Found: No image found with ID ${id}`);
  });

  it('shows the facade\'s errors, import methods and usage', async () => {
    const refused = await run(GLANCE, v2(['image-create', '--name', 'x', '--property', 'os_glance_x=1']));
    expect(refused.code).toBe(1);
    // Real Glance's HTML escapes the quotes too, and glanceclient prints them escaped.
    expect(refused.stderr).toContain('HTTP 403 Forbidden: Access was denied to this resource.: Attribute &#x27;os_glance_x&#x27; is reserved.');
    expect(JSON.parse(parseTable(await ok(GLANCE, v2(['import-info'])))['import-methods'])).toEqual({ description: 'Import methods available.', type: 'array', value: ['glance-direct', 'web-download', 'copy-image'] });
    expect(parseRows(await ok(GLANCE, v2(['usage'], 'memberQ')))).toEqual([['image_size_total', '-1', '0'], ['image_count_total', '-1', '0']]);
  });
});

describe('python-openstackclient (openstack)', () => {
  const openstack = (args: string[]) => ['--os-auth-type', 'admin_token', '--os-endpoint', `${app.baseUrl}/v2`, '--os-token', app.tokens.memberA, ...args];
  const json = async (args: string[]) => JSON.parse(await ok(OPENSTACK, openstack([...args, '-f', 'json'])));

  it('creates with data, shows, lists, sets, saves, deactivates and deletes an image', async () => {
    const created = await json(['image', 'create', '--file', imageFile, '--disk-format', 'raw', '--container-format', 'bare', '--property', 'os_distro=debian', '--tag', 'osc', 'cli-osc']);
    const id: string = created.id;
    expect(created).toMatchObject({ name: 'cli-osc', disk_format: 'raw', container_format: 'bare', visibility: 'shared' });

    const shown = await json(['image', 'show', id]);
    expect(shown).toMatchObject({ status: 'active', size: imageData.length, checksum: md5(imageData), tags: ['osc'] });
    expect(shown.properties).toMatchObject({ os_distro: 'debian', 'owner_specified.openstack.object': 'images/cli-osc' });

    const listed = await json(['image', 'list', '--name', 'cli-osc']);
    expect(listed).toEqual([{ ID: id, Name: 'cli-osc', Status: 'active' }]);

    await ok(OPENSTACK, openstack(['image', 'set', '--name', 'cli-osc2', '--property', 'os_version=12', '--tag', 'extra', '--min-ram', '64', id]));
    // find_image resolves a name through ?name= after the id lookup 404s.
    const set = await json(['image', 'show', 'cli-osc2']);
    expect(set).toMatchObject({ id, name: 'cli-osc2', min_ram: 64 });
    expect([...set.tags].sort()).toEqual(['extra', 'osc']);
    expect(set.properties).toMatchObject({ os_version: '12', os_distro: 'debian' });

    await ok(OPENSTACK, openstack(['image', 'unset', '--tag', 'extra', '--property', 'os_version', id]));
    const unset = await json(['image', 'show', id]);
    expect(unset.tags).toEqual(['osc']);
    expect(unset.properties).not.toHaveProperty('os_version');

    const saved = join(home, 'saved.raw');
    await ok(OPENSTACK, openstack(['image', 'save', '--file', saved, id]));
    expect(readFileSync(saved).equals(imageData)).toBe(true);

    await ok(OPENSTACK, openstack(['image', 'set', '--deactivate', id]));
    expect((await json(['image', 'show', id])).status).toBe('deactivated');
    await ok(OPENSTACK, openstack(['image', 'set', '--activate', id]));

    await ok(OPENSTACK, openstack(['image', 'delete', id]));
    const gone = await run(OPENSTACK, openstack(['image', 'show', id]));
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain(`No Image found for ${id}`);
  });
});
