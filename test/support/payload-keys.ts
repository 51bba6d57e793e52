import { PayloadKeyRing, temporalDataConverter } from '../../config/payload-codec';

/**
 * Secrets of the tests, committed for that purpose and used nowhere else. The histories recorded
 * in test/histories/ are encrypted with TEST_PAYLOAD_KEYS: keep it, or re-record them all.
 */
export const TEST_PAYLOAD_KEYS = 'test-1:fOm1zkA5Q38FuSCQdUr0100rV0ssFR0DohqkKJavMyg=';
/** The key a rotation test puts in front of the ring. */
export const TEST_ROTATED_PAYLOAD_KEY = 'test-2:O+23/L7xcr5lXAyk6f4F8ueqYRSSb0zfCOzTmrExYEc=';
export const TEST_CODEC_TOKEN = 'test_codec_token_0123456789abcdef';
/** The Temporal UI's origin in the tests: the only one that may call the codec server from a browser. */
export const TEST_UI_ORIGIN = 'http://127.0.0.1:8233';

/** The service's data converter with the tests' key ring, for clients and workers a test builds itself. */
export function testDataConverter(keys = TEST_PAYLOAD_KEYS) {
  return temporalDataConverter({ keyRing: PayloadKeyRing.from(keys), encrypt: true });
}
