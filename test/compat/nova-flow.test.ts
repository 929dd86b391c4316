import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, type TestApp } from '../helpers/app';
import { runClient } from '../helpers/openstack-clients';

/**
 * Nova's use of Glance (nova/image/glance.py), driven through the real python-glanceclient
 * library the way Nova calls it: a snapshot (create queued with the instance's properties,
 * upload the disk file with its size, show it active), then a boot (show,
 * download as an iterator, verify the bytes against os_hash_value as Nova does since
 * Rocky, and against checksum, which glanceclient itself checks while iterating).
 */
const PYTHON = '/usr/bin/python3';

const NOVA_FLOW = String.raw`
import hashlib, io, json, os
from glanceclient import Client

client = Client('2', endpoint=os.environ['GLANCE_URL'], token=os.environ['TOKEN'])
disk = os.urandom(3 * 1024 * 1024 + 11)

# Snapshot: create with the instance's properties, then upload the disk.
image = client.images.create(name='nova-snapshot', container_format='bare', disk_format='qcow2',
                             visibility='private', min_disk=1, min_ram=64,
                             image_type='snapshot', instance_uuid='6f1a7c42-3a6a-4c5e-9a7e-2f0f6d2b4e11',
                             base_image_ref='', owner_project_name='demo')
assert image['status'] == 'queued', image['status']
# Nova hands glanceclient the snapshot file; glanceclient streams it in chunks.
client.images.upload(image['id'], io.BytesIO(disk), image_size=len(disk))
shown = client.images.get(image['id'])
assert shown['status'] == 'active', shown['status']
assert shown['size'] == len(disk), shown['size']
assert shown['image_type'] == 'snapshot'

# Boot: download and verify as Nova does.
data = client.images.data(image['id'])
hasher = hashlib.new(shown['os_hash_algo'])
received = bytearray()
for chunk in data:
    hasher.update(chunk)
    received.extend(chunk)
assert hasher.hexdigest() == shown['os_hash_value'], 'os_hash_value mismatch'
assert bytes(received) == disk, 'bytes differ'

# Nova removes snapshot-only properties with a patch, and deletes failed snapshots.
client.images.update(image['id'], remove_props=['instance_uuid'])
assert 'instance_uuid' not in client.images.get(image['id'])
client.images.delete(image['id'])
print(json.dumps({'ok': True, 'md5': shown['checksum']}))
`;

let app: TestApp;
let home: string;

beforeAll(async () => {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing`);
  app = await startTestApp();
  home = mkdtempSync(join(tmpdir(), 'vitrine-nova-'));
});

afterAll(async () => {
  await app?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

test('snapshot, boot download with hash verification, property removal and delete, as Nova does them', async () => {
  const result = await runClient(home, PYTHON, ['-c', NOVA_FLOW], { GLANCE_URL: app.baseUrl, TOKEN: app.tokens.memberA });
  if (result.code !== 0) throw new Error(`the Nova flow failed (${result.code}):\n${result.stderr}\n${result.stdout}`);
  expect(JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}')).toMatchObject({ ok: true, md5: expect.stringMatching(/^[0-9a-f]{32}$/) });
}, 120_000);
