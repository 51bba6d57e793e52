import type { Client } from '@temporalio/client';
import type Stripe from 'stripe';
import type { ApiConfig } from '../config/env';
import type { Logger } from '../config/logger';
import type { Sql } from '../db/client';
import type { Metrics } from './metrics';

/** What the API process hands to `createApp` and, through it, to every route's handler. */
export interface AppDependencies {
  config: ApiConfig;
  sql: Sql;
  temporal: Client;
  /** Null when no Stripe key is configured: checkout then answers `stripe_not_configured`. */
  stripe: Stripe | null;
  logger: Logger;
  metrics: Metrics;
}
