// The scenario registry, in run order: reads before writes (creates grow the
// tables), memory after the read load, cold start last. To add one: write bench/scenarios/<name>.ts exporting a Scenario, reuse or
// add load definitions in requests.ts, and list it here.
import { blobDownloadScenario } from './blob-download';
import { blobUploadScenario } from './blob-upload';
import { coldStartScenario } from './cold-start';
import { dashboardScenario } from './dashboard';
import { facadeCreateScenario } from './facade-create';
import { facadeListScenario } from './facade-list';
import { facadeShowScenario } from './facade-show';
import { glanceCreateScenario } from './glance-create';
import { glanceListScenario } from './glance-list';
import { glanceShowScenario } from './glance-show';
import { graphqlCreateScenario } from './graphql-create';
import { graphqlListScenario } from './graphql-list';
import { graphqlShowScenario } from './graphql-show';
import { memoryScenario } from './memory';
import { proxyDownloadScenario } from './proxy-download';
import { proxyListScenario } from './proxy-list';
import { proxyShowScenario } from './proxy-show';
import { proxyUploadScenario } from './proxy-upload';
import { scaleoutListScenario } from './scaleout-list';
import { subscriptionFanoutScenario } from './subscription-fanout';
import { swiftBlobScenario } from './swift-blob';
import type { Scenario } from './types';

export const scenarios: Scenario[] = [
  glanceListScenario,
  glanceShowScenario,
  graphqlListScenario,
  graphqlShowScenario,
  facadeListScenario,
  facadeShowScenario,
  // Vitrine whose only backend is the run's Glance, vs the same requests to that Glance.
  proxyListScenario,
  proxyShowScenario,
  // Seeds members on the first page; before the creates, which push new images onto it.
  dashboardScenario,
  memoryScenario,
  glanceCreateScenario,
  graphqlCreateScenario,
  facadeCreateScenario,
  // Its own Vitrine and a bare ws server; 2 client processes.
  subscriptionFanoutScenario,
  blobUploadScenario,
  blobDownloadScenario,
  // Its own real Swift (scripts/swift-dev); the store runs in the harness process.
  swiftBlobScenario,
  // Image data through the Glance proxy vs straight to Glance, and Vitrine native; after
  // the reads (each round creates and deletes images in Glance).
  proxyUploadScenario,
  proxyDownloadScenario,
  // Its own 3 Vitrine processes on a fresh PostgreSQL schema and Redis channel.
  scaleoutListScenario,
  coldStartScenario,
];
