import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, type TestApp } from '../helpers/app';
import { GLANCE, OPENSTACK, parseRows, parseTable, requireClients, runClient, runClientOk } from '../helpers/openstack-clients';

/**
 * Interoperable import and multiple stores as the real clients drive them: glanceclient's
 * image-create-via-import, image-import (web-download, copy-image), image-tasks,
 * stores-info and stores-delete, and openstackclient's `image create --import`.
 */
jest.setTimeout(300_000);

let app: TestApp;
let home: string;
let source: Server;
let sourceUrl: string;
const data = randomBytes(700_000);
const md5 = createHash('md5').update(data).digest('hex');

const run = (command: string, args: string[]) => runClient(home, command, args);
const ok = (command: string, args: string[]) => runClientOk(home, command, args);
const v2 = (args: string[], token = app.tokens.memberA) => ['--os-image-url', app.baseUrl, '--os-auth-token', token, '--os-image-api-version', '2', ...args];

beforeAll(async () => {
  requireClients();
  home = mkdtempSync(join(tmpdir(), 'vitrine-import-clients-'));
  writeFileSync(join(home, 'image.raw'), data);
  source = createServer((_req, res) => res.writeHead(200, { 'content-length': data.length }).end(data));
  await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
  sourceUrl = `http://127.0.0.1:${(source.address() as AddressInfo).port}/image.raw`;
  app = await startTestApp({
    blobs: { stores: { fast: { path: join(home, 'fast') }, cheap: { path: join(home, 'cheap') } }, defaultStore: 'fast' },
    imports: { pollIntervalMs: 100, webDownload: { allowedHosts: ['127.0.0.1'], allowedPorts: [] } },
  });
});

afterAll(async () => {
  await app?.close();
  source?.closeAllConnections();
  await new Promise((resolve) => source?.close(resolve));
  if (home) rmSync(home, { recursive: true, force: true });
});

/** glanceclient's image-show until the status is one of `statuses`. */
async function showWhen(id: string, statuses: string[]): Promise<Record<string, string>> {
  for (;;) {
    const shown = parseTable(await ok(GLANCE, v2(['image-show', id])));
    if (statuses.includes(shown.status) && !shown.os_glance_import_task) return shown;
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('python-glanceclient import commands', () => {
  it('lists the stores, imports staged data, shows the image tasks, copies to another store and deletes from one', async () => {
    const stores = parseTable(await ok(GLANCE, v2(['stores-info'])));
    expect(JSON.parse(stores.stores)).toEqual([{ id: 'cheap' }, { id: 'fast', default: 'true' }]);

    const created = parseTable(await ok(GLANCE, v2(['image-create-via-import', '--name', 'via-import', '--disk-format', 'raw', '--container-format', 'bare', '--file', join(home, 'image.raw')])));
    const id = created.id;
    const active = await showWhen(id, ['active', 'queued']);
    expect(active).toMatchObject({ status: 'active', checksum: md5, stores: 'fast' });

    // image-tasks needs API 2.12, which a multistore facade lists in /versions.
    const tasks = parseRows(await ok(GLANCE, v2(['image-tasks', id])));
    expect(tasks.length).toBeGreaterThanOrEqual(1);
    expect(tasks.flat().join(' ')).toContain('success');

    // copy-image is Glance's copy_image rule: admins by default.
    expect((await run(GLANCE, v2(['image-import', id, '--import-method', 'copy-image', '--stores', 'cheap']))).code).not.toBe(0);
    await ok(GLANCE, v2(['image-import', id, '--import-method', 'copy-image', '--stores', 'cheap'], app.tokens.admin));
    expect((await showWhen(id, ['active'])).stores).toBe('cheap,fast');

    await ok(GLANCE, v2(['stores-delete', id, '--store', 'fast']));
    expect(parseTable(await ok(GLANCE, v2(['image-show', id]))).stores).toBe('cheap');
    const downloaded = join(home, 'downloaded.raw');
    await ok(GLANCE, v2(['image-download', '--file', downloaded, id]));
    expect(createHash('md5').update(readFileSync(downloaded)).digest('hex')).toBe(md5);
  });

  it('imports by web-download, and shows Glance\'s refusal for a URL the filter refuses', async () => {
    const created = parseTable(await ok(GLANCE, v2(['image-create', '--name', 'web', '--disk-format', 'raw', '--container-format', 'bare'])));
    await ok(GLANCE, v2(['image-import', created.id, '--import-method', 'web-download', '--uri', sourceUrl]));
    expect(await showWhen(created.id, ['active', 'queued'])).toMatchObject({ status: 'active', checksum: md5 });

    const other = parseTable(await ok(GLANCE, v2(['image-create', '--name', 'web-refused', '--disk-format', 'raw', '--container-format', 'bare'])));
    const refused = await run(GLANCE, v2(['image-import', other.id, '--import-method', 'web-download', '--uri', 'http://10.0.0.1/image.raw']));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('400 Bad Request');
    expect(refused.stderr).toContain('does not pass filtering');
  });
});

describe('python-openstackclient import', () => {
  const openstack = (args: string[]) => ['--os-auth-type', 'admin_token', '--os-endpoint', `${app.baseUrl}/v2`, '--os-token', app.tokens.memberA, ...args];

  it('creates an image with --import (stage, then glance-direct)', async () => {
    const created = JSON.parse(await ok(OPENSTACK, openstack(['image', 'create', '--import', '--file', join(home, 'image.raw'), '--disk-format', 'raw', '--container-format', 'bare', 'osc-import', '-f', 'json'])));
    const shown = await showWhen(created.id, ['active', 'queued']);
    expect(shown).toMatchObject({ status: 'active', checksum: md5 });
  });
});
