import type { Sql } from '../db/client';
import type { Mailer } from './mailer';

/** What every activity factory receives: real services in the worker and in the tests alike. */
export interface ActivityDependencies {
  sql: Sql;
  mailer: Mailer;
  config: { stripe: { livemode: boolean }; emailDomain: string };
}
