import { connectAddressProblem, endpointUrlProblem } from '../../domain/outbound-events';

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

/** The addresses a delivery may connect to, checked at connect time on what the name resolved to. */
describe('addresses a delivery connects to', () => {
  const production = { production: true, plainHttp: false };
  const development = { production: false, plainHttp: false };
  const developmentHttp = { production: false, plainHttp: true };

  it('when an address is private, loopback, link-local, shared, multicast or reserved, in any spelling, then production refuses it', () => {
    for (const address of [
      '0.0.0.0',
      '10.1.2.3',
      '100.64.0.1',
      '100.127.255.255',
      '127.0.0.1',
      '127.255.0.9',
      '169.254.169.254',
      '172.16.0.1',
      '172.31.255.255',
      '192.0.0.8',
      '192.0.2.1',
      '192.168.0.1',
      '198.18.0.1',
      '198.51.100.7',
      '203.0.113.9',
      '224.0.0.1',
      '239.255.255.250',
      '240.0.0.1',
      '255.255.255.255',
      '::',
      '::1',
      '0:0:0:0:0:0:0:1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:8.8.8.8',
      '::127.0.0.1',
      '64:ff9b::a9fe:a9fe',
      '100::1',
      '2001:db8::1',
      '2001::1',
      '2002:a00:1::1',
      'fc00::1',
      'fd12:3456::1',
      'fe80::1',
      'fe80::1%eth0',
      'febf::1',
      'fec0::1',
      'ff02::1',
      'FF05::2',
    ]) {
      expect([address, connectAddressProblem(address, production)]).toEqual([address, expect.any(String)]);
    }
  });

  it('when an address is public, then it is allowed everywhere; loopback only outside production', () => {
    for (const address of [
      '8.8.8.8',
      '93.184.216.34',
      '100.128.0.1',
      '172.32.0.1',
      '2606:4700::1111',
      '2a00:1450::e',
    ]) {
      expect([address, connectAddressProblem(address, production)]).toEqual([address, null]);
      expect([address, connectAddressProblem(address, development)]).toEqual([address, null]);
    }
    for (const address of ['127.0.0.1', '127.0.1.1', '::1']) {
      expect([address, connectAddressProblem(address, development)]).toEqual([address, null]);
      expect([address, connectAddressProblem(address, developmentHttp)]).toEqual([address, null]);
    }
    // Outside production, private networks stay refused; plain http goes to loopback only.
    expect(connectAddressProblem('10.0.0.1', development)).toMatch(/neither loopback nor public/);
    expect(connectAddressProblem('8.8.8.8', developmentHttp)).toMatch(/loopback only/);
    expect(connectAddressProblem('not-an-address', development)).toMatch(/not an IP address/);
  });
});
