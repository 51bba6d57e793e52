import { locateTool, type ToolSpec } from './tool-installer';

// Stripe's own mock of its API: it validates every request against Stripe's OpenAPI description.
const STRIPE_MOCK: ToolSpec = {
  binary: 'stripe-mock',
  label: 'stripe-mock',
  envVar: 'STRIPE_MOCK_PATH',
  install: { kind: 'go', module: 'github.com/stripe/stripe-mock@v0.203.0' },
};

export function findStripeMock(log?: (message: string) => void): string {
  return locateTool(STRIPE_MOCK, log);
}

if (require.main === module) {
  process.stdout.write(`${findStripeMock()}\n`);
}
