import { GLOBAL_NAMESPACE, type MetadefRecord } from '../../domain/metadefs';

/**
 * The catalog a fresh deployment starts with: the usual OpenStack resource types, and a few
 * namespaces that dashboards can offer as property pickers for images, volumes and
 * flavors. Written for Vitrine (not Glance's etc/metadefs files). Applied once per
 * database under DEFAULT_CATALOG_SEED: operators may delete or change any of it and it
 * will not come back; a later edition of the defaults gets a new seed name.
 */
export const DEFAULT_CATALOG_SEED = 'vitrine-default-catalog-1';

/** Resource type names are identifiers shared across OpenStack (Heat's resource names). */
export const DEFAULT_RESOURCE_TYPES = [
  'OS::Glance::Image',
  'OS::Cinder::Volume',
  'OS::Nova::Flavor',
  'OS::Nova::Server',
  'OS::Nova::Aggregate',
  'OS::Trove::Instance',
  'OS::Ironic::Node',
] as const;

interface NamespaceSeed {
  namespace: string;
  displayName: string;
  description: string;
  associations: { name: string; prefix?: string; properties_target?: string }[];
  properties: Record<string, Record<string, unknown>>;
  objects?: { name: string; description: string; required?: string[]; properties: Record<string, Record<string, unknown>> }[];
  tags?: string[];
}

const IMAGE_AND_VOLUME_IMAGE = [
  { name: 'OS::Glance::Image', prefix: 'hw_' },
  { name: 'OS::Cinder::Volume', prefix: 'hw_', properties_target: 'image' },
];

const NAMESPACES: NamespaceSeed[] = [
  {
    namespace: 'Vitrine::Libvirt::Devices',
    displayName: 'Virtual devices (libvirt)',
    description: 'Which emulated or paravirtual devices a libvirt/KVM guest booted from this image gets. Pick what the guest operating system has drivers for.',
    associations: IMAGE_AND_VOLUME_IMAGE,
    properties: {
      disk_bus: {
        title: 'Disk bus',
        description: 'Bus the root and extra disks attach to. virtio is the fastest where the guest supports it; ide or sata suit old guests without virtio drivers.',
        type: 'string',
        enum: ['virtio', 'scsi', 'sata', 'ide', 'usb', 'xen', 'uml'],
      },
      vif_model: {
        title: 'Network card model',
        description: 'Model of the emulated network interface. virtio performs best; e1000 works with almost every guest out of the box.',
        type: 'string',
        enum: ['virtio', 'e1000', 'e1000e', 'rtl8139', 'ne2k_pci', 'pcnet', 'vmxnet3'],
      },
      scsi_model: {
        title: 'SCSI controller model',
        description: 'Controller used when the disk bus is scsi; virtio-scsi allows many disks and discard (TRIM).',
        type: 'string',
        enum: ['virtio-scsi', 'lsilogic', 'buslogic', 'lsisas1068', 'vmpvscsi'],
      },
      video_model: {
        title: 'Video adapter model',
        description: 'Emulated graphics adapter; none saves memory on headless servers.',
        type: 'string',
        enum: ['virtio', 'qxl', 'vga', 'cirrus', 'bochs', 'gop', 'none'],
      },
      firmware_type: {
        title: 'Firmware',
        description: 'Firmware the guest boots with: legacy BIOS, or UEFI (required by many recent and arm64 images).',
        type: 'string',
        enum: ['bios', 'uefi'],
      },
      machine_type: {
        title: 'Machine type',
        description: 'Emulated chipset, as the hypervisor names it (for example q35 or pc on x86_64, virt on aarch64).',
        type: 'string',
      },
      qemu_guest_agent: {
        title: 'Guest agent channel',
        description: 'Adds the channel the QEMU guest agent talks over, for quiesced snapshots and password changes. The agent must run in the guest.',
        type: 'boolean',
      },
    },
  },
  {
    namespace: 'Vitrine::Compute::CPU',
    displayName: 'CPU pinning and topology',
    description: 'How the guest\'s virtual CPUs map onto host CPUs, and the socket/core/thread layout the guest sees (some licences count sockets).',
    associations: [...IMAGE_AND_VOLUME_IMAGE, { name: 'OS::Nova::Flavor', prefix: 'hw:' }],
    properties: {
      cpu_policy: {
        title: 'CPU policy',
        description: 'dedicated pins each virtual CPU to a host CPU of its own (steady latency); shared lets them float over the host\'s shared CPUs.',
        type: 'string',
        enum: ['shared', 'dedicated', 'mixed'],
      },
      cpu_thread_policy: {
        title: 'CPU thread policy',
        description: 'With dedicated CPUs: prefer, require or isolate host SMT siblings (hyper-threads).',
        type: 'string',
        enum: ['prefer', 'require', 'isolate'],
      },
      mem_page_size: {
        title: 'Memory page size',
        description: 'Back guest memory with small or large (huge) pages, any, or an explicit size such as 2MB or 1GB.',
        type: 'string',
        pattern: '^(small|large|any|[0-9]+[kKmMgG][bB]?)$',
      },
    },
    objects: [
      {
        name: 'Topology',
        description: 'The virtual CPU layout. Leave a value out to let the scheduler choose it.',
        properties: {
          cpu_sockets: { title: 'Sockets', description: 'Virtual CPU sockets.', type: 'integer', minimum: 1 },
          cpu_cores: { title: 'Cores per socket', description: 'Cores in each virtual socket.', type: 'integer', minimum: 1 },
          cpu_threads: { title: 'Threads per core', description: 'Hardware threads in each virtual core.', type: 'integer', minimum: 1 },
        },
      },
    ],
  },
  {
    namespace: 'Vitrine::Image::OperatingSystem',
    displayName: 'Operating system',
    description: 'What the image contains, so users can find images by distribution and the compute service can tune the guest for it.',
    associations: [{ name: 'OS::Glance::Image' }, { name: 'OS::Cinder::Volume', properties_target: 'image' }],
    properties: {
      os_distro: {
        title: 'Distribution',
        description: 'Short lower-case name of the distribution, without version (use os_version for that).',
        type: 'string',
        enum: ['almalinux', 'alpine', 'arch', 'centos', 'cirros', 'debian', 'fedora', 'freebsd', 'opensuse', 'rhel', 'rocky', 'sles', 'ubuntu', 'windows'],
      },
      os_version: {
        title: 'Version',
        description: 'Release of the distribution as its vendor writes it, for example 12, 24.04 or 2022.',
        type: 'string',
      },
      os_type: {
        title: 'Operating system family',
        description: 'Family of the guest; the compute service formats ephemeral disks and sets the clock accordingly.',
        type: 'string',
        enum: ['linux', 'windows'],
      },
      architecture: {
        title: 'CPU architecture',
        description: 'Instruction set the image is built for; the scheduler only places it on matching hosts.',
        type: 'string',
        enum: ['x86_64', 'aarch64', 'ppc64le', 's390x', 'riscv64', 'i686', 'armv7l'],
      },
      os_admin_user: {
        title: 'Administrator account',
        description: 'Account that password injection and password resets apply to (root or Administrator when unset).',
        type: 'string',
      },
    },
    tags: ['cloud-init', 'cloudbase-init'],
  },
];

/** The seed rows, all stamped `at`. Resource types are protected, as Glance's own ones. */
export function defaultCatalog(at: string): MetadefRecord[] {
  const row = (namespace: string, kind: MetadefRecord['kind'], name: string, body: Record<string, unknown>, extra: Partial<MetadefRecord> = {}): MetadefRecord => ({
    namespace, kind, name, owner: null, visibility: null, protected: false, body, createdAt: at, updatedAt: at, ...extra,
  });
  const rows: MetadefRecord[] = DEFAULT_RESOURCE_TYPES.map((name) => row(GLOBAL_NAMESPACE, 'resource_type', name, {}, { protected: true }));
  for (const ns of NAMESPACES) {
    // Public and protected, without owner: every project reads them, only admins change them.
    rows.push(row(ns.namespace, 'namespace', ns.namespace, { display_name: ns.displayName, description: ns.description }, { visibility: 'public', protected: true }));
    for (const { name, ...rest } of ns.associations) rows.push(row(ns.namespace, 'association', name, rest));
    for (const [name, schema] of Object.entries(ns.properties)) rows.push(row(ns.namespace, 'property', name, schema));
    for (const { name, ...rest } of ns.objects ?? []) rows.push(row(ns.namespace, 'object', name, rest));
    for (const name of ns.tags ?? []) rows.push(row(ns.namespace, 'tag', name, {}));
  }
  return rows;
}
