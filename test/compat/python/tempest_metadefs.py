"""Tempest 33's metadef API tests, run through Tempest's own image v2 service clients.

Usage: python3 tempest_metadefs.py BASE_URL ADMIN_TOKEN

The bodies of tempest/api/image/v2/test_images_metadefs_schema.py and
tempest/api/image/v2/admin/test_images_metadefs_*.py, step for step, with the clients of
tempest/lib/services/image/v2 (which check each status code: expected_success). Only the
test scaffolding differs: credentials come from a static token instead of Keystone, and
cleanups run at the end of each test. Prints one JSON line per test: {"test", "ok", "error"}.
"""
import json
import sys
import traceback

from tempest.lib import auth
from tempest.lib import exceptions as lib_exc
from tempest.lib.common.utils import data_utils
from tempest.lib.common.utils import test_utils
from tempest.lib.services.image.v2 import namespace_objects_client
from tempest.lib.services.image.v2 import namespace_properties_client
from tempest.lib.services.image.v2 import namespace_tags_client
from tempest.lib.services.image.v2 import namespaces_client
from tempest.lib.services.image.v2 import resource_types_client
from tempest.lib.services.image.v2 import schemas_client


class StaticTokenAuth(auth.AuthProvider):
    """Sends a fixed token to a fixed endpoint (no Keystone)."""

    def __init__(self, url, token):
        self.url = url
        self.token = token
        self.credentials = None
        self._scope = 'project'
        self.alt_auth_data = None
        self.alt_part = None

    def auth_request(self, method, url, headers=None, body=None, filters=None):
        headers = dict(headers or {})
        headers['X-Auth-Token'] = self.token
        return '%s/v2/%s' % (self.url, url), headers, body

    def base_url(self, filters, auth_data=None):
        return self.url + '/v2'

    def get_token(self):
        return self.token

    def _decorate_request(self, *args, **kwargs):
        raise NotImplementedError

    def _get_auth(self):
        raise NotImplementedError

    def _fill_credentials(self, auth_data_body):
        pass

    def is_expired(self, auth_data):
        return False

    def set_auth(self):
        pass


def clients(url, token):
    provider = StaticTokenAuth(url, token)
    args = (provider, 'image', 'RegionOne')
    return {
        'namespaces': namespaces_client.NamespacesClient(*args),
        'objects': namespace_objects_client.NamespaceObjectsClient(*args),
        'properties': namespace_properties_client.NamespacePropertiesClient(*args),
        'tags': namespace_tags_client.NamespaceTagsClient(*args),
        'resource_types': resource_types_client.ResourceTypesClient(*args),
        'schemas': schemas_client.SchemasClient(*args),
    }


class Case:
    def __init__(self, c):
        self.c = c
        self.cleanups = []

    def add_cleanup(self, fn, *args):
        self.cleanups.append((fn, args))

    def run_cleanups(self):
        for fn, args in reversed(self.cleanups):
            fn(*args)

    # tempest/api/image/base.py BaseV2ImageTest.create_namespace
    def create_namespace(self, namespace_name=None, visibility='public', description='Tempest', protected=False, **kwargs):
        if not namespace_name:
            namespace_name = data_utils.rand_name('test-ns')
        kwargs.setdefault('display_name', namespace_name)
        namespace = self.c['namespaces'].create_namespace(
            namespace=namespace_name, visibility=visibility, description=description, protected=protected, **kwargs)
        self.add_cleanup(self.c['namespaces'].delete_namespace, namespace_name)
        return namespace


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def schema_tests(case):
    for path, name in [('metadefs/namespace', 'namespace'), ('metadefs/namespaces', 'namespaces'),
                       ('metadefs/resource_type', 'resource_type_association'),
                       ('metadefs/resource_types', 'resource_type_associations'),
                       ('metadefs/object', 'object'), ('metadefs/objects', 'objects'),
                       ('metadefs/property', 'property'), ('metadefs/properties', 'properties'),
                       ('metadefs/tag', 'tag'), ('metadefs/tags', 'tags')]:
        body = case.c['schemas'].show_schema(path)
        check(body['name'] == name, '%s: name %r' % (path, body['name']))


def test_basic_metadata_definition_namespaces(case):
    c = case.c
    body = c['resource_types'].list_resource_types()
    resource_name = body['resource_types'][0]['name']
    name = [{'name': resource_name}]
    namespace_name = data_utils.rand_name('namespace')
    body = c['namespaces'].create_namespace(
        namespace=namespace_name, visibility='public', description='Tempest', display_name=namespace_name,
        resource_type_associations=name, protected=True)

    def cleanup():
        body = c['namespaces'].show_namespace(namespace_name)
        check(body['namespace'] == namespace_name, 'cleanup show')
        c['namespaces'].update_namespace(namespace=namespace_name, description='Tempest', visibility='private',
                                         display_name=namespace_name, protected=False)
        c['namespaces'].delete_namespace(namespace_name)
    case.add_cleanup(test_utils.call_and_ignore_notfound_exc, cleanup)
    bodys = c['namespaces'].list_namespaces()['namespaces']
    body = [namespace['namespace'] for namespace in bodys]
    check(namespace_name in body, 'listed')
    body = c['namespaces'].show_namespace(namespace_name)
    check(body['namespace'] == namespace_name, 'shown')
    check(body['visibility'] == 'public', 'public')
    try:
        c['namespaces'].delete_namespace(namespace_name)
        raise AssertionError('protected namespace deleted')
    except lib_exc.Forbidden:
        pass
    body = c['namespaces'].update_namespace(namespace=namespace_name, description='Tempest', visibility='private',
                                            display_name=namespace_name, protected=False)
    check(body['visibility'] == 'private', 'private')
    check(body['protected'] is False, 'unprotected')
    c['namespaces'].delete_namespace(namespace_name)
    c['namespaces'].wait_for_resource_deletion(namespace_name)


def _create_namespace_object(case, namespace):
    object_name = data_utils.rand_name('MetadataNamespaceObjectsTest-object')
    namespace_object = case.c['objects'].create_namespace_object(namespace['namespace'], name=object_name)
    case.add_cleanup(test_utils.call_and_ignore_notfound_exc, case.c['objects'].delete_namespace_object,
                     namespace['namespace'], object_name)
    return namespace_object


def test_create_update_delete_meta_namespace_objects(case):
    c = case.c
    namespace = case.create_namespace()
    body = _create_namespace_object(case, namespace)
    up_object_name = data_utils.rand_name('update-object')
    body = c['objects'].update_namespace_object(namespace['namespace'], body['name'], name=up_object_name)
    check(body['name'] == up_object_name, 'renamed')
    c['objects'].delete_namespace_object(namespace['namespace'], up_object_name)
    names = [o['name'] for o in c['objects'].list_namespace_objects(namespace['namespace'])['objects']]
    check(up_object_name not in names, 'deleted')


def test_list_meta_namespace_objects(case):
    namespace = case.create_namespace()
    obj = _create_namespace_object(case, namespace)
    names = [o['name'] for o in case.c['objects'].list_namespace_objects(namespace['namespace'])['objects']]
    check(obj['name'] in names, 'listed')


def test_show_meta_namespace_objects(case):
    namespace = case.create_namespace()
    obj = _create_namespace_object(case, namespace)
    body = case.c['objects'].show_namespace_object(namespace['namespace'], obj['name'])
    check(obj['name'] == body['name'], 'shown')


def test_basic_meta_def_namespace_property(case):
    c = case.c
    body = c['resource_types'].list_resource_types()
    resource_name = body['resource_types'][0]['name']
    enum = ["xen", "qemu", "kvm", "lxc", "uml", "vmware", "hyperv"]
    namespace = case.create_namespace()
    body = c['resource_types'].create_resource_type_association(namespace['namespace'], name=resource_name)
    property_title = data_utils.rand_name('property')
    body = c['properties'].create_namespace_property(namespace=namespace['namespace'], title=property_title,
                                                     name=resource_name, type="string", enum=enum)
    check(property_title == body['title'], 'title')
    body = c['properties'].show_namespace_properties(namespace['namespace'], resource_name)
    check(resource_name == body['name'], 'name')
    update_property_title = data_utils.rand_name('update-property')
    body = c['properties'].update_namespace_properties(namespace['namespace'], resource_name,
                                                       title=update_property_title, type="string", enum=enum,
                                                       name=resource_name)
    check(update_property_title == body['title'], 'updated title')
    c['properties'].delete_namespace_property(namespace['namespace'], resource_name)
    titles = [p['title'] for p in c['properties'].list_namespace_properties(namespace['namespace'])['properties']]
    check(update_property_title not in titles, 'deleted')


TAGS = [{"name": "sample-tag1"}, {"name": "sample-tag2"}, {"name": "sample-tag3"}]
TAG_LIST = ["sample-tag1", "sample-tag2", "sample-tag3"]


def _create_namespace_tags(case, namespace):
    tags = case.c['tags'].create_namespace_tags(namespace['namespace'], tags=TAGS)
    case.add_cleanup(test_utils.call_and_ignore_notfound_exc, case.c['tags'].delete_namespace_tags, namespace['namespace'])
    return tags


def test_create_list_delete_namespace_tags(case):
    c = case.c
    namespace = case.create_namespace()
    _create_namespace_tags(case, namespace)
    body = c['tags'].list_namespace_tags(namespace['namespace'])
    check(len(body['tags']) == 3, 'three tags')
    for i in range(3):
        check(body['tags'][i]['name'] in TAG_LIST, 'tag %d' % i)
    c['tags'].delete_namespace_tags(namespace['namespace'])
    body = c['tags'].list_namespace_tags(namespace['namespace'])
    check(len(body['tags']) == 0, 'no tags')


def test_create_update_delete_tag(case):
    c = case.c
    namespace = case.create_namespace()
    _create_namespace_tags(case, namespace)
    tag_name = data_utils.rand_name('tag_name')
    c['tags'].create_namespace_tag(namespace=namespace['namespace'], tag_name=tag_name)
    body = c['tags'].show_namespace_tag(namespace['namespace'], tag_name)
    check(tag_name == body['name'], 'shown')
    update_tag_definition = data_utils.rand_name('update-tag')
    body = c['tags'].update_namespace_tag(namespace['namespace'], tag_name=tag_name, name=update_tag_definition)
    check(update_tag_definition == body['name'], 'renamed')
    c['tags'].delete_namespace_tag(namespace['namespace'], update_tag_definition)
    names = [t['name'] for t in c['tags'].list_namespace_tags(namespace['namespace'])['tags']]
    check(update_tag_definition not in names, 'deleted')


def test_basic_meta_def_resource_type_association(case):
    c = case.c
    body = c['resource_types'].list_resource_types()
    resource_name = body['resource_types'][0]['name']
    namespace = case.create_namespace()
    body = c['resource_types'].create_resource_type_association(namespace['namespace'], name=resource_name)
    check(body['name'] == resource_name, 'associated')
    names = [a['name'] for a in c['resource_types'].list_resource_type_association(namespace['namespace'])['resource_type_associations']]
    check(resource_name in names, 'listed')
    c['resource_types'].delete_resource_type_association(namespace['namespace'], resource_name)
    names = [a['name'] for a in c['resource_types'].list_resource_type_association(namespace['namespace'])['resource_type_associations']]
    check(resource_name not in names, 'removed')


TESTS = [schema_tests, test_basic_metadata_definition_namespaces, test_create_update_delete_meta_namespace_objects,
         test_list_meta_namespace_objects, test_show_meta_namespace_objects, test_basic_meta_def_namespace_property,
         test_create_list_delete_namespace_tags, test_create_update_delete_tag, test_basic_meta_def_resource_type_association]


def main():
    url, token = sys.argv[1], sys.argv[2]
    for test in TESTS:
        case = Case(clients(url, token))
        result = {'test': test.__name__, 'ok': True}
        try:
            test(case)
            case.run_cleanups()
        except Exception:  # reported, not raised: every test runs
            result = {'test': test.__name__, 'ok': False, 'error': traceback.format_exc()}
        print(json.dumps(result), flush=True)


if __name__ == '__main__':
    main()
