import { codecRoutes } from '../codec-server';
import type { DocumentedRoute, Route } from '../http/route';
import { stripeWebhookRoute } from '../webhook';
import { accountRoutes } from './accounts';
import { auditRoutes } from './audit';
import { grantRoutes } from './grants';
import { healthRoutes } from './health';
import { noticeRoutes } from './notices';
import { outboundWebhookRoutes } from './outbound-webhooks';
import { packRoutes } from './packs';
import { purchaseRoutes } from './purchases';
import { rejectedEventRoutes } from './rejected-events';
import { reservationRoutes } from './reservations';
import { reviewRoutes } from './reviews';
import { topupRoutes } from './topups';
import { usageRoutes } from './usage';

/** Every route behind an API key, room by room: api/app.ts mounts them, /openapi.json describes them. */
export const API_ROUTES: readonly Route[] = [
  ...packRoutes,
  ...accountRoutes,
  ...grantRoutes,
  ...reservationRoutes,
  ...usageRoutes,
  ...purchaseRoutes,
  ...topupRoutes,
  ...noticeRoutes,
  ...rejectedEventRoutes,
  ...reviewRoutes,
  ...auditRoutes,
  ...outboundWebhookRoutes,
];

/** What /openapi.json describes: the routes above and those their own modules serve. */
export const DOCUMENTED_ROUTES: readonly (Route | DocumentedRoute)[] = [
  stripeWebhookRoute,
  ...healthRoutes,
  ...codecRoutes,
  ...API_ROUTES,
];
