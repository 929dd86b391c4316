// The scenario registry, in run order: reads before writes (creates grow the
// tables), memory after the read load, cold start last. To add one (e.g. the
// /v2 facade): write bench/scenarios/<name>.ts exporting a Scenario, reuse or
// add load definitions in requests.ts, and list it here.
import { blobDownloadScenario } from './blob-download';
import { blobUploadScenario } from './blob-upload';
import { coldStartScenario } from './cold-start';
import { glanceCreateScenario } from './glance-create';
import { glanceListScenario } from './glance-list';
import { glanceShowScenario } from './glance-show';
import { graphqlCreateScenario } from './graphql-create';
import { graphqlListScenario } from './graphql-list';
import { graphqlShowScenario } from './graphql-show';
import { memoryScenario } from './memory';
import type { Scenario } from './types';

export const scenarios: Scenario[] = [
  glanceListScenario,
  glanceShowScenario,
  graphqlListScenario,
  graphqlShowScenario,
  memoryScenario,
  glanceCreateScenario,
  graphqlCreateScenario,
  blobUploadScenario,
  blobDownloadScenario,
  coldStartScenario,
];
