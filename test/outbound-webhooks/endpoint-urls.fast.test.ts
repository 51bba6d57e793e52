import { endpointUrlProblem } from '../../domain/outbound-events';

/** The URLs an admin may register for outbound webhooks, refused before anything is stored. */
describe('endpoint URLs an admin registers', () => {
  it('when a production URL names loopback, link-local, shared or multicast space in another spelling, then it is refused', () => {
    for (const url of [
      'https://localhost./hooks',
      'https://LOCALHOST/hooks',
      'https://api.localhost/hooks',
      'https://[fe90::1]/hooks',
      'https://[febf::1]/hooks',
      'https://[::ffff:169.254.169.254]/hooks',
      'https://100.64.0.1/hooks',
      'https://224.0.0.1/hooks',
      'https://255.255.255.255/hooks',
      'https://[64:ff9b::a9fe:a9fe]/hooks',
      'https://[ff02::1]/hooks',
    ]) {
      expect([url, endpointUrlProblem(url, true)]).toEqual([url, expect.stringMatching(/not allowed/)]);
    }
    expect(endpointUrlProblem('https://backend.example.com/hooks', true)).toBeNull();
    expect(endpointUrlProblem('https://100.128.0.1/hooks', true)).toBeNull();
    // Names that merely start like a private range are names, not addresses.
    expect(endpointUrlProblem('https://10.backend.example.com/hooks', true)).toBeNull();
    expect(endpointUrlProblem('https://127.backend.example.com/hooks', true)).toBeNull();
    expect(endpointUrlProblem('https://[2606:4700::1111]/hooks', true)).toBeNull();
  });

  it('when a URL carries spaces or control characters (which the parser would silently drop), then it is refused, not stored as sent', () => {
    for (const url of [
      ' https://backend.example.com/hooks',
      'https://backend.example.com/hooks\n',
      'https://back\tend.example.com/hooks',
    ]) {
      expect([url, endpointUrlProblem(url, false)]).toEqual([url, expect.stringMatching(/control|space/)]);
    }
  });
});
