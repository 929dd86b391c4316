import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { startTestApp, type TestApp } from '../helpers/app';

/**
 * Tempest 33's metadef tests (10 schema tests in test_images_metadefs_schema.py, and the
 * admin tests of test_images_metadefs_{namespaces,namespace_objects,namespace_properties,
 * namespace_tags,resource_types}.py) run step for step through Tempest's own image v2
 * service clients (python3-tempest), which check every status code, against Vitrine's
 * facade on a fresh deployment. Tests that read `resource_types[0]` rely on the default
 * catalog. Keystone is replaced by a static admin token (python/tempest_metadefs.py).
 */
const SCRIPT = join(__dirname, 'python', 'tempest_metadefs.py');
const PYTHON = '/usr/bin/python3';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => app?.close());

function run(url: string, token: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // Asynchronous: the app under test answers from this process's event loop.
    execFile(PYTHON, [SCRIPT, url, token], { timeout: 120_000, env: { PATH: process.env.PATH, LANG: 'C.UTF-8', NO_PROXY: '127.0.0.1', no_proxy: '127.0.0.1' } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

it('passes every metadef test of Tempest 33 through Tempest\'s clients', async () => {
  const result = await run(app.baseUrl, app.tokens.admin);
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  const outcomes = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as { test: string; ok: boolean; error?: string });
  expect(outcomes.map((o) => o.test)).toEqual([
    'schema_tests',
    'test_basic_metadata_definition_namespaces',
    'test_create_update_delete_meta_namespace_objects',
    'test_list_meta_namespace_objects',
    'test_show_meta_namespace_objects',
    'test_basic_meta_def_namespace_property',
    'test_create_list_delete_namespace_tags',
    'test_create_update_delete_tag',
    'test_basic_meta_def_resource_type_association',
  ]);
  expect(outcomes.filter((o) => !o.ok)).toEqual([]);
}, 180_000);

it('fails where the API is wrong (the harness can fail): a reader may not create namespaces', async () => {
  const result = await run(app.baseUrl, app.tokens.readerA);
  const outcomes = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as { test: string; ok: boolean; error?: string });
  // Schemas are readable by all; every test that writes hits Glance's admin-only policy (403).
  expect(outcomes.find((o) => o.test === 'schema_tests')?.ok).toBe(true);
  const failed = outcomes.filter((o) => !o.ok);
  expect(failed).toHaveLength(8);
  for (const f of failed) expect(f.error).toMatch(/Forbidden/);
}, 180_000);
